//! The payment timeout: every interval, orders still pending
//! `PAYMENT_TIMEOUT_MINUTES` after they were created are marked `expired`
//! (`ledgerhook_store::ledger::orders::expire_stale`, one statement, safe
//! with any number of workers running it). Confirm then answers
//! `PAYMENT_TIMEOUT`; a payment that still arrives wins and is counted as an
//! anomaly by the state machine.
//!
//! The job holds off while payments may be waiting to be processed: an
//! order expired while its buyer's payment webhook sits in the queue would
//! make confirm send a buyer who paid towards a second payment. So a run
//! does nothing while the operator has paused processing, or while the
//! oldest unprocessed delivery among the newest ones is older than
//! [`BACKLOG_MAX_AGE`] (workers down or behind, or just resumed after a
//! pause). Holding off only delays expiry, which costs nothing but an order
//! that stays pending a little longer.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ledgerhook_store::ledger::orders::expire_stale;
use ledgerhook_store::{control, deliveries};
use sqlx::PgPool;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics;

/// How far before the previous run's cutoff the next run looks again: an
/// order's `created_at` is its transaction's start, and a transaction open
/// that long is an incident of its own.
const RESCAN_MARGIN: chrono::Duration = chrono::Duration::hours(1);

/// How often a run looks at every order again, without the lower bound: an
/// order skipped while held for review and cleared later than
/// [`RESCAN_MARGIN`] after its timeout is below every bounded run's range,
/// and would otherwise wait for a restart. A full run walks
/// `payment_orders_created_idx` over every order older than the cutoff and
/// reads each row to check its status (or the planner takes a sequential
/// scan), so its cost grows with the table: once an hour per worker keeps
/// that to a fraction of a second of I/O an hour for a table of a million
/// orders, against a bounded run's few index pages every interval.
const FULL_SCAN_EVERY: Duration = Duration::from_secs(60 * 60);

/// How many of the newest deliveries (by primary key) the backlog check
/// reads. A backward scan of the primary key index and as many heap
/// fetches: about a millisecond, once per run. `processed_at` and `outcome`
/// are deliberately in no index (the worker's update of them must stay
/// heap-only), so "the oldest unprocessed delivery" of the whole table
/// would be a sequential scan; the newest rows are where a backlog shows.
const BACKLOG_WINDOW: i64 = 1000;

/// A run holds off while an unprocessed delivery among the newest
/// [`BACKLOG_WINDOW`] was received longer ago than this. Deliveries are
/// normally processed within a second; a payment retried because its order
/// is not known yet stays unprocessed for its retry schedule (about six
/// minutes by default) and holds the job for that long, on the safe side.
const BACKLOG_MAX_AGE: Duration = Duration::from_secs(2 * 60);

/// Why a run did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    Paused,
    Backlog,
}

impl Hold {
    fn reason(self) -> &'static str {
        match self {
            Self::Paused => "processing is paused",
            Self::Backlog => "deliveries are waiting to be processed",
        }
    }
}

pub async fn run(pool: PgPool, timeout: Duration, every: Duration, stop: CancellationToken) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut bound = ScanBound::default();
    // Logged when it changes, not every run: a pause can last hours.
    let mut held: Option<Hold> = None;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let hold = match hold(&pool).await {
            Ok(hold) => hold,
            // Unable to tell whether payments are waiting: do not expire.
            Err(e) => {
                tracing::warn!(error = %e, "payment timeout run skipped: cannot read the pause switch or the backlog");
                continue;
            }
        };
        if hold != held {
            match hold {
                Some(h) => tracing::info!(reason = h.reason(), "payment timeout held"),
                None => tracing::info!("payment timeout running again"),
            }
            held = hold;
        }
        if hold.is_some() {
            continue;
        }
        let now = Instant::now();
        let scan_from = bound.scan_from(now);
        match expire_stale(&pool, timeout, scan_from).await {
            Ok(run) => {
                bound.ran(now, scan_from.is_none(), run.cutoff);
                for (provider, orders) in &run.by_provider {
                    metrics::payments(provider.as_str(), "expired", *orders);
                }
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

/// Whether this run must do nothing. The pause switch is read just before
/// the expiry statement, through its owner (`control::read`), rather than
/// inside it: a read in the same statement would be no stronger (a pause
/// committed a moment after that statement's snapshot is not seen either),
/// and the switch's SQL stays in one module. What a pause promises is that
/// nothing is expired from the next run on, which either way holds.
///
/// A provider paused on its own holds the job too: its payments wait
/// unprocessed, so its orders would look unpaid and expire.
async fn hold(pool: &PgPool) -> Result<Option<Hold>, sqlx::Error> {
    let switch = control::read(pool).await?;
    if switch.paused || !switch.paused_providers.is_empty() {
        return Ok(Some(Hold::Paused));
    }
    let max_age_secs = i64::try_from(BACKLOG_MAX_AGE.as_secs()).unwrap_or(i64::MAX);
    // Behind when a delivery in the window waits too long, or when every
    // delivery of a full window waits (the backlog goes further back than
    // the window, so its true age is unknown).
    let behind = deliveries::processing::backlog_behind(pool, BACKLOG_WINDOW, max_age_secs).await?;
    Ok(behind.then_some(Hold::Backlog))
}

/// The lower bound of each run's scan: none for the first run and then
/// every [`FULL_SCAN_EVERY`], else the previous cutoff less
/// [`RESCAN_MARGIN`].
#[derive(Debug, Default)]
struct ScanBound {
    last_cutoff: Option<DateTime<Utc>>,
    last_full: Option<Instant>,
}

impl ScanBound {
    fn scan_from(&self, now: Instant) -> Option<DateTime<Utc>> {
        let full_due = self
            .last_full
            .is_none_or(|at| now.saturating_duration_since(at) >= FULL_SCAN_EVERY);
        if full_due {
            None
        } else {
            self.last_cutoff.map(|cutoff| cutoff - RESCAN_MARGIN)
        }
    }

    /// Notes a run that succeeded (a failed one changes nothing: the next
    /// run covers its range).
    fn ran(&mut self, at: Instant, full: bool, cutoff: DateTime<Utc>) {
        self.last_cutoff = Some(cutoff);
        if full {
            self.last_full = Some(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scan_is_bounded_between_full_scans_and_full_again_every_hour() {
        let start = Instant::now();
        let cutoff = Utc::now();
        let mut bound = ScanBound::default();
        assert_eq!(bound.scan_from(start), None, "the first run looks at all");
        bound.ran(start, true, cutoff);

        let later = start + Duration::from_secs(60);
        assert_eq!(bound.scan_from(later), Some(cutoff - RESCAN_MARGIN));
        let next_cutoff = cutoff + chrono::Duration::seconds(60);
        bound.ran(later, false, next_cutoff);

        // A bounded run does not reset the clock of the full scan.
        let almost = start + FULL_SCAN_EVERY - Duration::from_secs(1);
        assert_eq!(bound.scan_from(almost), Some(next_cutoff - RESCAN_MARGIN));
        let due = start + FULL_SCAN_EVERY;
        assert_eq!(
            bound.scan_from(due),
            None,
            "an order stranded below the bound is found"
        );
        bound.ran(due, true, next_cutoff);
        assert!(bound.scan_from(due + Duration::from_secs(60)).is_some());
    }

    #[test]
    fn a_failed_full_run_is_tried_again() {
        let start = Instant::now();
        let bound = ScanBound::default();
        // Nothing noted (the run failed): still due.
        assert_eq!(bound.scan_from(start + Duration::from_secs(60)), None);
    }
}
