//! The scheduled credit expiry: every interval, remove what has expired and
//! was not spent. Safe with any number of workers running it (see
//! `ledgerhook_store::credits::expire_due`); `ledgerhook-admin
//! expire-credits` runs the same on demand.

use std::time::Duration;

use ledgerhook_store::credits::expire_due;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::metrics;

pub async fn run(pool: PgPool, every: Duration, stop: CancellationToken) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match expire_due(&pool).await {
            Ok(run) if run.grants > 0 => {
                metrics::credits_expired(run.credits);
                tracing::info!(
                    users = run.users,
                    grants = run.grants,
                    credits = run.credits,
                    "expired credits removed"
                );
            }
            Ok(_) => {}
            // The next tick tries again; nothing is half-done (one
            // transaction per user).
            Err(e) => tracing::warn!(error = %e, "credit expiry run failed"),
        }
    }
}
