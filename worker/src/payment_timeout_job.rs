//! The payment timeout: every interval, orders still pending
//! `PAYMENT_TIMEOUT_MINUTES` after they were created are marked `expired`
//! (`ledgerhook_shared::ledger::orders::expire_stale`, one statement, safe
//! with any number of workers running it). Confirm then answers
//! `PAYMENT_TIMEOUT`; a payment that still arrives wins and is counted as an
//! anomaly by the state machine.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ledgerhook_shared::ledger::orders::expire_stale;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::metrics;

/// How far before the previous run's cutoff the next run looks again: an
/// order's `created_at` is its transaction's start, and a transaction open
/// that long is an incident of its own.
const RESCAN_MARGIN: chrono::Duration = chrono::Duration::hours(1);

pub async fn run(pool: PgPool, timeout: Duration, every: Duration, stop: CancellationToken) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first run looks at every order; later ones from the last cutoff.
    let mut scan_from: Option<DateTime<Utc>> = None;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match expire_stale(&pool, timeout, scan_from).await {
            Ok(run) => {
                scan_from = Some(run.cutoff - RESCAN_MARGIN);
                if run.expired > 0 {
                    metrics::orders_expired(run.expired);
                    tracing::info!(orders = run.expired, "unpaid orders expired");
                }
            }
            // The next tick tries again; the statement is all or nothing.
            Err(e) => tracing::warn!(error = %e, "payment timeout run failed"),
        }
    }
}
