//! The pause switch (runbook 5.2, steps 1 and 5) and the status an
//! operator looks at before and after turning it.

use std::fmt::Write as _;
use std::time::Duration;

use lapin::options::QueueDeclareOptions;
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::FieldTable;
use ledgerhook_domain::PaymentProvider;
use ledgerhook_runtime::amqp::{self, Topology};
use ledgerhook_store::control;
use serde_json::json;
use sqlx::PgPool;

use super::{Peers, Printout};
use ledgerhook_store::audit::{self as audit_log, Entry};
use ledgerhook_worker::pause;

/// How long `status` waits for the broker before reporting the queue as
/// unknown (the rest of the status comes from the database).
const BROKER_LOOK_TIMEOUT: Duration = Duration::from_secs(3);

/// Turns the switch on (`paused`) or off, with its audit row in the same
/// transaction. Turning it where it already is changes nothing (and says so).
pub async fn switch(
    pool: &PgPool,
    operator: Option<&str>,
    paused: bool,
    reason: &str,
) -> anyhow::Result<Printout> {
    switch_for(pool, operator, None, paused, reason).await
}

/// [`switch`], or with `provider` only that provider's deliveries: they
/// wait (set aside by the workers, unprocessed) while the others' are
/// processed.
pub async fn switch_for(
    pool: &PgPool,
    operator: Option<&str>,
    provider: Option<PaymentProvider>,
    paused: bool,
    reason: &str,
) -> anyhow::Result<Printout> {
    let command = if paused { "pause" } else { "resume" };
    let by = operator.unwrap_or("unknown");
    let mut tx = pool.begin().await?;
    let (before, changed) = match provider {
        None => control::set(&mut tx, paused, by, reason).await?,
        Some(provider) => {
            control::set_provider(&mut tx, provider.as_str(), paused, by, reason).await?
        }
    };
    let result = json!({"paused": paused, "changed": changed, "before": before});
    let audit_id = audit_log::record(
        &mut *tx,
        Entry {
            operator,
            reason: Some(reason),
            command,
            arguments: match provider {
                None => json!({}),
                Some(provider) => json!({"provider": provider.as_str()}),
            },
            result: result.clone(),
        },
    )
    .await?;
    tx.commit().await?;
    if let Some(provider) = provider {
        let provider = provider.as_str();
        let text = match (paused, changed) {
            (true, true) => format!(
                "{provider} PAUSED by {by}: {reason}\nits deliveries are recorded and wait unprocessed (workers look again every {} s); the other providers' are processed.\nresume with: ledgerhook-admin resume --provider {provider} --reason ...\n",
                ledgerhook_worker::settler::DEFER_DELAY.as_secs()
            ),
            (false, true) => format!(
                "{provider} RESUMED by {by}: {reason}; its waiting deliveries are processed within {} s\n",
                ledgerhook_worker::settler::DEFER_DELAY.as_secs()
            ),
            (true, false) => format!("{provider} is paused already; nothing changed\n"),
            (false, false) => format!("{provider} is not paused; nothing changed\n"),
        };
        let mut json = result;
        json["auditId"] = json!(audit_id);
        json["provider"] = json!(provider);
        return Ok(Printout::done(json, text));
    }
    let text = match (paused, changed) {
        (true, true) => format!(
            "processing PAUSED by {by}: {reason}\nworkers stop taking messages within {:?} and finish what they hold; the ingester keeps recording.\nresume with: ledgerhook-admin resume --reason ...\n",
            pause::POLL_INTERVAL * 4
        ),
        (false, true) => format!("processing RESUMED by {by}: {reason}\n"),
        (true, false) => format!(
            "already paused since {} by {}: {}; nothing changed\n",
            before.since,
            before.changed_by.as_deref().unwrap_or("-"),
            before.reason.as_deref().unwrap_or("-")
        ),
        (false, false) => "not paused; nothing changed\n".to_owned(),
    };
    let mut json = result;
    json["auditId"] = json!(audit_id);
    Ok(Printout::done(json, text))
}

pub async fn status(
    pool: &PgPool,
    peers: &Peers,
    operator: Option<&str>,
) -> anyhow::Result<Printout> {
    let control = control::read(pool).await?;
    let (unprocessed, parked) = ledgerhook_store::deliveries::operator::backlog(pool).await?;
    let (held_for_review, shortfall_orders, shortfall_credits) =
        ledgerhook_store::ledger::orders::review_counts(pool).await?;
    let queue = tokio::time::timeout(BROKER_LOOK_TIMEOUT, work_queue(peers))
        .await
        .map_err(anyhow::Error::from)
        .and_then(|looked| looked);
    let queue_json = match &queue {
        Ok(Some((ready, consumers))) => json!({"ready": ready, "consumers": consumers}),
        Ok(None) => json!({"ready": 0, "consumers": 0, "declared": false}),
        Err(e) => json!({"unknown": format!("{e:#}")}),
    };
    let json = json!({
        "paused": control.paused,
        "pausedProviders": control.paused_providers,
        "since": control.since,
        "changedBy": control.changed_by,
        "reason": control.reason,
        "workQueue": queue_json,
        "unprocessedDeliveries": unprocessed,
        "parkedDeliveries": parked,
        "ordersHeldForReview": held_for_review,
        "revokeShortfall": {"orders": shortfall_orders, "credits": shortfall_credits},
    });
    audit_log::record(
        pool,
        Entry {
            operator,
            reason: None,
            command: "status",
            arguments: json!({}),
            result: json!({"paused": control.paused}),
        },
    )
    .await?;
    let mut text = String::new();
    let who = format!(
        "since {} by {}: {}",
        control.since,
        control.changed_by.as_deref().unwrap_or("-"),
        control.reason.as_deref().unwrap_or("-")
    );
    if control.paused {
        writeln!(text, "processing:              PAUSED {who}")?;
    } else if control.changed_by.is_none() {
        writeln!(text, "processing:              running (never paused)")?;
    } else {
        writeln!(text, "processing:              running (resumed {who})")?;
    }
    if !control.paused_providers.is_empty() {
        writeln!(
            text,
            "paused providers:        {} (their deliveries wait unprocessed)",
            control.paused_providers.join(", ")
        )?;
    }
    match &queue {
        Ok(Some((ready, consumers))) => writeln!(
            text,
            "work queue:              {ready} ready, {consumers} consumers (workers attached)"
        )?,
        Ok(None) => writeln!(
            text,
            "work queue:              not declared yet (no worker or ingester has started)"
        )?,
        Err(e) => writeln!(text, "work queue:              unknown ({e:#})")?,
    }
    writeln!(text, "unprocessed deliveries:  {unprocessed}")?;
    writeln!(text, "parked deliveries:       {parked}")?;
    writeln!(text, "orders held for review:  {held_for_review}")?;
    writeln!(
        text,
        "revoke shortfalls:       {shortfall_orders} orders, {shortfall_credits} credits"
    )?;
    Ok(Printout::done(json, text))
}

/// After a pause: waits until no consumer is attached to the work queue
/// (every worker has finished and acknowledged what it held, and left), or
/// `wait` has passed, and adds what it saw to the printout. Until then a
/// worker may still be committing the batch it held when the switch turned.
pub async fn wait_for_workers_to_leave(
    peers: &Peers,
    wait: Duration,
    printout: &mut Printout,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let consumers = loop {
        let consumers = tokio::time::timeout(BROKER_LOOK_TIMEOUT, work_queue(peers))
            .await
            .map_err(anyhow::Error::from)
            .and_then(|looked| looked)
            // No queue yet: no worker was ever attached.
            .map(|queue| queue.map_or(0, |(_, consumers)| consumers))?;
        if consumers == 0 || started.elapsed() >= wait {
            break consumers;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let waited = started.elapsed();
    printout.json["workersAttached"] = json!(consumers);
    printout.json["waitedMs"] = json!(u64::try_from(waited.as_millis()).unwrap_or(u64::MAX));
    if consumers == 0 {
        writeln!(
            printout.text,
            "no worker is attached to the work queue ({:.1} s): nothing is being processed",
            waited.as_secs_f64()
        )?;
    } else {
        writeln!(
            printout.text,
            "{consumers} consumers still attached after {:.0} s: a worker still finishing its batch, or one that cannot read the switch (see its log)",
            waited.as_secs_f64()
        )?;
    }
    Ok(())
}

/// The work queue's ready messages and consumers (the workers attached):
/// a passive declare, which changes nothing; `None` when the queue does not
/// exist yet (no worker or ingester has declared it).
async fn work_queue(peers: &Peers) -> anyhow::Result<Option<(u32, u32)>> {
    Ok(queues(peers).await?.work)
}

/// What the broker's queues hold, as [`queues`] reads it.
#[derive(Debug, Clone, Copy)]
pub struct Queues {
    /// The work queue's ready messages and consumers.
    pub work: Option<(u32, u32)>,
    /// The parked queue's messages.
    pub parked: Option<u32>,
}

/// The work queue's and the parked queue's depths, by passive declares on
/// one connection (the console's overview reads them too).
pub async fn queues(peers: &Peers) -> anyhow::Result<Queues> {
    let connection = peers.broker()?.connect("ledgerhook-admin").await?;
    let topology = Topology::new(&peers.queue_prefix);
    let work = passive(&connection, topology.queue.as_str()).await;
    let parked = passive(&connection, topology.parked_queue.as_str()).await;
    amqp::say_goodbye(connection.close(200, "OK".into())).await;
    Ok(Queues {
        work: work?,
        parked: parked?.map(|(messages, _)| messages),
    })
}

/// A queue's messages and consumers; `None` when it does not exist. A
/// channel of its own: a 404 closes the channel it came on.
async fn passive(
    connection: &lapin::Connection,
    queue: &str,
) -> anyhow::Result<Option<(u32, u32)>> {
    let channel = connection.create_channel().await?;
    let declared = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await;
    match declared {
        Ok(declared) => Ok(Some((declared.message_count(), declared.consumer_count()))),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The broker's 404 for a passive declare of a queue that does not exist.
fn is_not_found(error: &lapin::Error) -> bool {
    matches!(
        error.kind(),
        lapin::ErrorKind::ProtocolError(amqp)
            if *amqp.kind() == AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND)
    )
}
