//! Retention on a schedule: every `RETENTION_INTERVAL_SECS` (default 3600;
//! 0 turns it off), the first run [`FIRST_RUN_AFTER`] after start at most,
//! not at start: a fleet of workers restarted together would otherwise all
//! try at once, and the run's partition DDL would meet the start's rush.
//! Any number of workers may run it: one at a time does the work
//! (`super::run_once`), the others find the lock taken and skip.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::Settings;
use crate::metrics;

/// The longest wait for the first run.
pub const FIRST_RUN_AFTER: Duration = Duration::from_secs(10 * 60);

pub async fn run(pool: PgPool, settings: Settings, every: Duration, stop: CancellationToken) {
    let first = tokio::time::Instant::now() + every.min(FIRST_RUN_AFTER);
    let mut ticks = tokio::time::interval_at(first, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        // A run is stopped with the worker: a batch is one statement, so
        // nothing is left half-done.
        let run = tokio::select! {
            () = stop.cancelled() => return,
            run = super::run_once(&pool, settings, false) => run,
        };
        match run {
            Ok(report) if report.skipped => {
                metrics::retention_run("skipped");
                tracing::debug!("retention: another run is under way");
            }
            Ok(report) => {
                metrics::retention_run("done");
                metrics::retention_counted(&report);
                tracing::info!(
                    scrubbed_deliveries = report.deliveries_scrubbed,
                    walked_deliveries = report.deliveries_walked,
                    batches = report.batches,
                    scrubbed_notifications = report.notifications_scrubbed,
                    partitions_created = report.partitions_created.len(),
                    partitions_dropped = report.partitions_dropped.len(),
                    partitions_busy = report.partitions_busy.len(),
                    "retention run done"
                );
            }
            Err(e) => {
                metrics::retention_run("failed");
                tracing::warn!(error = %format!("{e:#}"), "retention run failed; the next one tries again");
            }
        }
    }
}
