//! Commands on recorded deliveries: parked, show, redrive, replay, and
//! expire-credits. Their text is what it always was (scripts read it).

use crate::terminal::Shown;
use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;

use super::cli::Wait;
use super::replay::{Action, Admin, Selection};
use super::{Peers, Printout};
use ledgerhook_store::audit::{self as audit_log, Entry};
use ledgerhook_store::ledger::orders::events_of_delivery;

fn read_entry<'a>(operator: Option<&'a str>, command: &'a str, arguments: Value) -> Entry<'a> {
    Entry {
        operator,
        reason: None,
        command,
        arguments,
        result: json!({}),
    }
}

pub async fn parked(pool: &PgPool, operator: Option<&str>, limit: i64) -> anyhow::Result<Printout> {
    let rows = ledgerhook_store::deliveries::operator::parked(pool, limit).await?;
    let mut text = String::new();
    let mut listed = Vec::new();
    for row in &rows {
        let detail = row.outcome_detail.clone().unwrap_or_default();
        writeln!(
            text,
            "{}\t{}\t{}",
            Shown(&row.delivery_id),
            row.received_at,
            Shown(detail)
        )?;
        listed.push(json!({
            "deliveryId": row.delivery_id,
            "row": row.id,
            "receivedAt": row.received_at,
            "detail": row.outcome_detail,
        }));
    }
    let mut entry = read_entry(operator, "parked", json!({"limit": limit}));
    entry.result = json!({"listed": rows.len()});
    audit_log::record(pool, entry).await?;
    Ok(Printout::done(json!({"parked": listed}), text))
}

pub async fn show(
    pool: &PgPool,
    operator: Option<&str>,
    delivery_id: &str,
) -> anyhow::Result<Printout> {
    let found = ledgerhook_store::deliveries::operator::find(pool, delivery_id).await?;
    let mut entry = read_entry(operator, "show", json!({"deliveryId": delivery_id}));
    entry.result = json!({"found": found.is_some()});
    audit_log::record(pool, entry).await?;
    let Some((row, body)) = found else {
        if let Some(kept) =
            ledgerhook_store::deliveries::operator::key_of(pool, delivery_id).await?
        {
            return Ok(dropped_by_retention(&kept));
        }
        return Ok(Printout::refused(
            "DELIVERY_NOT_FOUND",
            format!("no delivery {delivery_id} was recorded"),
            json!({"deliveryId": delivery_id}),
        ));
    };
    let events: Vec<(String, Value)> = events_of_delivery(pool, row.id)
        .await?
        .into_iter()
        .map(|line| (line.head, line.data))
        .collect();
    let body_text = String::from_utf8_lossy(&body).into_owned();
    let mut text = format!(
        "delivery {} (row {}) received {}\nprocessed: {:?}, outcome: {:?}, detail: {:?}\nbody: {}\n",
        Shown(&row.delivery_id),
        row.id,
        row.received_at,
        row.processed_at,
        row.outcome,
        row.outcome_detail,
        Shown(&body_text)
    );
    if let Some(scrubbed) = row.scrubbed_at {
        writeln!(
            text,
            "scrubbed {scrubbed}: body and headers dropped by retention or erasure"
        )?;
    }
    for (head, data) in &events {
        writeln!(text, "event: {head} {data}")?;
    }
    let body_json: Value = serde_json::from_slice(&body).unwrap_or(Value::String(body_text));
    Ok(Printout::done(
        json!({
            "deliveryId": row.delivery_id,
            "row": row.id,
            "receivedAt": row.received_at,
            "processedAt": row.processed_at,
            "outcome": row.outcome,
            "detail": row.outcome_detail,
            "scrubbedAt": row.scrubbed_at,
            "body": body_json,
            "events": events.iter().map(|(head, data)| json!({"event": head, "data": data})).collect::<Vec<_>>(),
        }),
        text,
    ))
}

/// A delivery whose month retention dropped: what its key keeps.
fn dropped_by_retention(kept: &ledgerhook_store::deliveries::operator::Kept) -> Printout {
    let hash: Option<String> = kept
        .body_sha256
        .as_ref()
        .map(|h| h.iter().map(|b| format!("{b:02x}")).collect());
    Printout::done(
        json!({
            "deliveryId": kept.delivery_id,
            "provider": kept.provider,
            "row": kept.delivery_row,
            "receivedAt": kept.received_at,
            "outcome": kept.outcome,
            "bodySha256": hash,
            "dropped": true,
        }),
        format!(
            "delivery {} (row {}, {}) received {}\noutcome: {:?}\nits month was dropped by retention: only its key is kept; the body's sha256 was {}\n",
            Shown(&kept.delivery_id),
            kept.delivery_row,
            kept.provider,
            kept.received_at,
            kept.outcome,
            hash.as_deref().unwrap_or("not recorded")
        ),
    )
}

pub async fn replay(
    pool: &PgPool,
    peers: &Peers,
    operator: Option<&str>,
    selection: Selection,
    wait: &Wait,
) -> anyhow::Result<Printout> {
    let admin = Admin::connect(pool.clone(), peers.broker()?, &peers.queue_prefix).await?;
    let wait_for = (!wait.no_wait).then(|| Duration::from_secs(wait.wait_secs));
    let results = admin.replay(&selection, wait_for).await?;
    admin.close().await;
    let mut text = String::new();
    let mut listed = Vec::new();
    for r in &results {
        let (action, action_code) = match &r.action {
            Action::AlreadyProcessed { outcome } => (
                format!("already processed ({outcome}); not sent again"),
                "already_processed",
            ),
            Action::Redriven => ("was parked; sent again".to_owned(), "redriven"),
            Action::Queued => ("not processed yet; sent again".to_owned(), "queued"),
            Action::NotFound => ("never recorded".to_owned(), "not_found"),
        };
        let outcome = r
            .outcome
            .as_deref()
            .map(|o| format!(" -> {o}"))
            .unwrap_or_default();
        writeln!(
            text,
            "{}\t{action}{}",
            Shown(&r.delivery_id),
            Shown(outcome)
        )?;
        listed.push(json!({
            "deliveryId": r.delivery_id,
            "row": r.row,
            "action": action_code,
            "outcome": r.outcome,
        }));
    }
    writeln!(text, "{} deliveries", results.len())?;
    let (command, arguments) = match &selection {
        Selection::Parked => ("redrive", json!({})),
        Selection::Ids(ids) => ("replay", json!({"deliveryIds": ids})),
        Selection::Between(from, to) => ("replay", json!({"from": from, "to": to})),
        Selection::Rows(rows) => ("replay", json!({"rows": rows})),
    };
    let sent = listed
        .iter()
        .filter(|r| r["action"] == "redriven" || r["action"] == "queued")
        .count();
    audit_log::record(
        pool,
        Entry {
            operator,
            reason: None,
            command,
            arguments,
            result: json!({"deliveries": results.len(), "sent": sent}),
        },
    )
    .await?;
    Ok(Printout::done(json!({"deliveries": listed}), text))
}

pub async fn expire_credits(pool: &PgPool, operator: Option<&str>) -> anyhow::Result<Printout> {
    // The database is all this needs; the same job the workers run.
    let run = ledgerhook_store::credits::expire_due(pool).await?;
    let result = json!({"credits": run.credits, "grants": run.grants, "users": run.users});
    let mut entry = read_entry(operator, "expire-credits", json!({}));
    entry.result = result.clone();
    audit_log::record(pool, entry).await?;
    Ok(Printout::done(
        result,
        format!(
            "expired {} credits from {} grants of {} users\n",
            run.credits, run.grants, run.users
        ),
    ))
}
