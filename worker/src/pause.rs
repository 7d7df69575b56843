//! The pause switch (`processing_control`, one row): `ledgerhook-admin
//! pause` turns it on, every worker watches it and stops taking messages
//! while it is on. Its statements are `ledgerhook_store::control`.
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

use ledgerhook_store::control;
use sqlx::PgPool;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::metrics;

/// How often each worker looks at the switch.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Watches the switch until `stop`: the receiver holds whether processing
/// is paused, read once before this returns (a worker started while paused
/// never consumes). A failed read keeps the last value (a database outage
/// neither pauses nor resumes anyone).
pub async fn watch(pool: PgPool, stop: CancellationToken) -> watch::Receiver<bool> {
    let first = control::poll(&pool).await.map(|(paused, _, _)| paused);
    let (tx, rx) = watch::channel(first.unwrap_or(false));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            match control::poll(&pool).await {
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
