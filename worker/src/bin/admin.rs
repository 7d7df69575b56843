//! `ledgerhook-admin`: what an operator does with recorded deliveries.
//!
//! ```text
//! ledgerhook-admin parked [--limit N]          list parked (dead-letter) deliveries
//! ledgerhook-admin show DELIVERY_ID            one delivery, its body and its order events
//! ledgerhook-admin redrive                     replay every parked delivery
//! ledgerhook-admin replay DELIVERY_ID...       replay deliveries by id
//! ledgerhook-admin replay --from T --to T      replay deliveries received in [from, to) (RFC 3339)
//!   options for redrive/replay: --no-wait, --wait-secs N (default 30)
//! ledgerhook-admin expire-credits              remove expired unspent credits now
//! ```
//! Uses DATABASE_URL, AMQP_URL, AMQP_CA_FILE and QUEUE_PREFIX like the worker. A replay
//! never grants twice: deliveries already processed are reported, not resent.

use std::time::Duration;

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use ledgerhook_shared::amqp::Broker;
use ledgerhook_shared::config::{DEFAULT_DATABASE_URL, DEFAULT_QUEUE_PREFIX, EnvReader};
use ledgerhook_worker::admin::{Action, Admin, Selection};

const USAGE: &str = "usage: ledgerhook-admin parked [--limit N] | show DELIVERY_ID | redrive [--no-wait] | replay (DELIVERY_ID... | --from RFC3339 --to RFC3339) [--no-wait] [--wait-secs N] | expire-credits";

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut env = EnvReader::from_process();
    let database_url = env.or_default("DATABASE_URL", DEFAULT_DATABASE_URL);
    let broker = Broker::from_env(&mut env);
    let prefix = env.or_default("QUEUE_PREFIX", DEFAULT_QUEUE_PREFIX);
    env.finish()?;

    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first() else {
        bail!(USAGE)
    };
    let mut wait = Some(Duration::from_secs(30));
    let mut limit = 50;
    let mut from = None;
    let mut to = None;
    let mut ids = Vec::new();
    let mut rest = args[1..].iter();
    while let Some(arg) = rest.next() {
        let mut value = || {
            rest.next()
                .with_context(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--no-wait" => wait = None,
            "--wait-secs" => wait = Some(Duration::from_secs(value()?.parse()?)),
            "--limit" => limit = value()?.parse()?,
            "--from" => {
                from = Some(
                    value()?
                        .parse::<DateTime<Utc>>()
                        .context("--from takes an RFC 3339 time")?,
                );
            }
            "--to" => {
                to = Some(
                    value()?
                        .parse::<DateTime<Utc>>()
                        .context("--to takes an RFC 3339 time")?,
                );
            }
            _ if arg.starts_with('-') => bail!("unknown option {arg}\n{USAGE}"),
            _ => ids.push(arg.clone()),
        }
    }

    if command == "expire-credits" {
        // The database is all this needs; the same job the workers run.
        let pool = sqlx::PgPool::connect(&database_url)
            .await
            .context("connecting to PostgreSQL")?;
        let run = ledgerhook_shared::credits::expire_due(&pool).await?;
        println!(
            "expired {} credits from {} grants of {} users",
            run.credits, run.grants, run.users
        );
        return Ok(());
    }
    let admin = Admin::connect(&database_url, &broker, &prefix).await?;
    match command.as_str() {
        "parked" => {
            for row in admin.parked(limit).await? {
                println!(
                    "{}\t{}\t{}",
                    row.delivery_id,
                    row.received_at,
                    row.outcome_detail.unwrap_or_default()
                );
            }
        }
        "show" => {
            let id = ids.first().context(USAGE)?;
            let Some((row, body, events)) = admin.show(id).await? else {
                bail!("no delivery {id} was recorded")
            };
            println!(
                "delivery {} (row {}) received {}",
                row.delivery_id, row.id, row.received_at
            );
            println!(
                "processed: {:?}, outcome: {:?}, detail: {:?}",
                row.processed_at, row.outcome, row.outcome_detail
            );
            println!("body: {}", String::from_utf8_lossy(&body));
            for event in events {
                println!("event: {event}");
            }
        }
        "redrive" | "replay" => {
            let selection = match (command.as_str(), from, to) {
                ("redrive", _, _) => Selection::Parked,
                (_, Some(from), Some(to)) => Selection::Between(from, to),
                (_, None, None) if !ids.is_empty() => Selection::Ids(ids),
                _ => bail!(USAGE),
            };
            let results = admin.replay(&selection, wait).await?;
            for r in &results {
                let action = match &r.action {
                    Action::AlreadyProcessed { outcome } => {
                        format!("already processed ({outcome}); not sent again")
                    }
                    Action::Redriven => "was parked; sent again".into(),
                    Action::Queued => "not processed yet; sent again".into(),
                    Action::NotFound => "never recorded".into(),
                };
                let outcome = r
                    .outcome
                    .as_deref()
                    .map(|o| format!(" -> {o}"))
                    .unwrap_or_default();
                println!("{}\t{action}{outcome}", r.delivery_id);
            }
            println!("{} deliveries", results.len());
        }
        _ => bail!(USAGE),
    }
    Ok(())
}
