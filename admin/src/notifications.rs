//! `ledgerhook-admin notifications`: what the notification outbox holds,
//! why the parked ones failed, and (`--resend-parked`) sending them again,
//! with the audit row in the same transaction.

use crate::terminal::Shown;
use std::fmt::Write as _;

use ledgerhook_store::notifications::operator;
use serde_json::json;
use sqlx::PgPool;

use super::Printout;
use ledgerhook_store::audit::{self as audit_log, Entry};

/// Lists the outbox; with `resend` (the reason), first makes every parked
/// row due again.
pub async fn notifications(
    pool: &PgPool,
    who: Option<&str>,
    resend: Option<&str>,
    limit: i64,
) -> anyhow::Result<Printout> {
    let mut text = String::new();
    let mut resent = None;
    if let Some(reason) = resend {
        let mut tx = pool.begin().await?;
        let count = operator::resend_parked(&mut tx).await?;
        audit_log::record(
            &mut *tx,
            Entry {
                operator: who,
                reason: Some(reason),
                command: "notifications",
                arguments: json!({"resendParked": true}),
                result: json!({"resent": count}),
            },
        )
        .await?;
        tx.commit().await?;
        writeln!(
            text,
            "{count} parked notifications are due again; the notifiers send them within a poll"
        )?;
        resent = Some(count);
    }
    let counts = operator::state_counts(pool).await?;
    let parked = operator::parked(pool, limit).await?;
    if resend.is_none() {
        audit_log::record(
            pool,
            Entry {
                operator: who,
                reason: None,
                command: "notifications",
                arguments: json!({"limit": limit}),
                result: json!({"parked": parked.len()}),
            },
        )
        .await?;
    }
    if counts.is_empty() {
        writeln!(text, "no notifications (none configured, or no grant yet)")?;
    }
    for c in &counts {
        writeln!(text, "{:<8} {:<8} {}", c.channel, c.state, c.count)?;
    }
    for p in &parked {
        writeln!(
            text,
            "parked {} {} order {} after {} attempts at {}: {}",
            p.id,
            p.channel,
            Shown(&p.order_id),
            p.attempts,
            p.parked_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            Shown(p.last_error.as_deref().unwrap_or("-")),
        )?;
    }
    Ok(Printout::done(
        json!({"counts": counts, "parked": parked, "resent": resent}),
        text,
    ))
}
