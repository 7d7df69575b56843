//! The pause switch (`processing_control`, one row): `ledgerhook-admin
//! pause` turns it on, every worker watches it and stops taking messages
//! while it is on. This module is the table's one owner.
//!
//! Why a poll and not LISTEN/NOTIFY: one primary-key read every
//! [`POLL_INTERVAL`] per worker is nothing to PostgreSQL, needs no dedicated
//! connection, and cannot miss a change across a reconnect; the poll
//! interval plus the drain is well inside the 2 s the runbook asks for.
//!
//! The same poll reads the revoke shortfalls (credits revoked from orders but
//! already spent), so each worker exports them as gauges: the admin that
//! revokes is a short-lived process with no metrics endpoint, and the
//! database is where the count lives.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::metrics;

/// How often each worker looks at the switch.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// The switch as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Control {
    pub paused: bool,
    /// When it was last turned either way.
    pub since: DateTime<Utc>,
    pub changed_by: Option<String>,
    pub reason: Option<String>,
}

pub async fn read(pool: &PgPool) -> Result<Control, sqlx::Error> {
    sqlx::query_as("select paused, since, changed_by, reason from processing_control")
        .fetch_one(pool)
        .await
}

/// Turns the switch to `paused` in the caller's transaction (where the
/// audit row goes too). Returns the switch as it was before, and whether
/// this call changed it (turning it to where it already is changes nothing).
pub async fn set(
    tx: &mut PgConnection,
    paused: bool,
    by: &str,
    reason: &str,
) -> Result<(Control, bool), sqlx::Error> {
    let before: Control = sqlx::query_as(
        "select paused, since, changed_by, reason from processing_control for update",
    )
    .fetch_one(&mut *tx)
    .await?;
    if before.paused == paused {
        return Ok((before, false));
    }
    sqlx::query(
        "update processing_control set paused = $1, since = now(), changed_by = $2, reason = $3",
    )
    .bind(paused)
    .bind(by)
    .bind(reason)
    .execute(&mut *tx)
    .await?;
    Ok((before, true))
}

/// Watches the switch until `stop`: the receiver holds whether processing
/// is paused, read once before this returns (a worker started while paused
/// never consumes). A failed read keeps the last value (a database outage
/// neither pauses nor resumes anyone).
pub async fn watch(pool: PgPool, stop: CancellationToken) -> watch::Receiver<bool> {
    let first = poll(&pool).await.map(|(paused, _, _)| paused);
    let (tx, rx) = watch::channel(first.unwrap_or(false));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            match poll(&pool).await {
                Ok((paused, shortfall_orders, shortfall_credits)) => {
                    metrics::revoke_shortfall(shortfall_orders, shortfall_credits);
                    tx.send_if_modified(|current| {
                        let changed = *current != paused;
                        *current = paused;
                        changed
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the pause switch; keeping its last value");
                }
            }
        }
    });
    rx
}

async fn poll(pool: &PgPool) -> Result<(bool, i64, i64), sqlx::Error> {
    sqlx::query_as(
        "select (select paused from processing_control),
                count(*), coalesce(sum(revoke_shortfall), 0)::int8
         from payment_orders where revoke_shortfall > 0",
    )
    .fetch_one(pool)
    .await
}
