//! Retention (issue 23): deliveries and notifications are not kept for
//! ever. A run, every `RETENTION_INTERVAL_SECS` in the workers ([`job`]) or
//! once by `ledgerhook-admin retention run`:
//!
//! 1. makes this month's partition of `webhook_deliveries` and the next
//!    two's, and any month whose rows wait in the default partition;
//! 2. walks the deliveries by id, a bounded batch at a time with a pause
//!    between, and scrubs those received more than `RETENTION_DAYS` ago
//!    whose outcome is final (processed, not parked, not behind an order
//!    held for review): body and headers dropped, the body's SHA-256 and
//!    the outcome kept with the key, the row and its lineage kept;
//! 3. scrubs sent notifications older than that (address, last error, the
//!    user's id among the facts);
//! 4. drops the months (and the legacy partition) wholly older than that
//!    whose every row is scrubbed: what is left of their deliveries is
//!    their key, hash and outcome in `delivery_keys`, and the order events
//!    and ledger entries pointing at their rows.
//!
//! One run at a time, across every worker and the admin command
//! (`ledgerhook_store::retention`'s advisory lock); a run that finds
//! another under way does nothing. Every statement is bounded: a batch
//! walks at most `RETENTION_BATCH_ROWS` rows; partition DDL gives up after
//! a second waiting for its lock (the next run tries again).

pub mod job;

use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Months, NaiveDate, Utc};
use ledgerhook_runtime::config::EnvReader;
use ledgerhook_store::deliveries::{partitions, scrub};
use ledgerhook_store::{notifications, retention};
use sqlx::{PgConnection, PgPool};

/// `RETENTION_DAYS`' bounds. Below a week, a delivery could lose its body
/// while its payment is still being looked into (a provider retries for
/// days, a runbook is worked on for days); 0 is refused rather than read
/// as "off" or "scrub everything at once" (`RETENTION_INTERVAL_SECS=0` is
/// off). Above ten years is surely a typo.
pub const DAYS: std::ops::RangeInclusive<u32> = 7..=3650;
pub const DEFAULT_DAYS: u32 = 90;
/// `RETENTION_BATCH_ROWS`' bounds and default.
pub const BATCH_ROWS: std::ops::RangeInclusive<i64> = 1..=10_000;
pub const DEFAULT_BATCH_ROWS: i64 = 500;
/// The pause after each batch that scrubbed something, so a first run over
/// a long history does not hold the database's writes for minutes.
pub const BATCH_PAUSE: Duration = Duration::from_millis(100);
/// Months made ahead of the current one.
const MONTHS_AHEAD: u32 = 2;

/// How long things are kept and how big a batch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// `RETENTION_DAYS` (default 90).
    pub days: u32,
    /// `RETENTION_BATCH_ROWS` (default 500): rows walked per statement.
    pub batch_rows: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            days: DEFAULT_DAYS,
            batch_rows: DEFAULT_BATCH_ROWS,
        }
    }
}

impl Settings {
    /// From `RETENTION_DAYS` and `RETENTION_BATCH_ROWS`; a value out of
    /// bounds is an invalid variable, named.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &mut EnvReader<F>) -> Self {
        let days: u32 = env.parsed_or("RETENTION_DAYS", DEFAULT_DAYS);
        if !DAYS.contains(&days) {
            env.invalid(format!(
                "RETENTION_DAYS must be from {} to {} (days), not {days}; to turn retention off set RETENTION_INTERVAL_SECS=0",
                DAYS.start(),
                DAYS.end()
            ));
        }
        let batch_rows: i64 = env.parsed_or("RETENTION_BATCH_ROWS", DEFAULT_BATCH_ROWS);
        if !BATCH_ROWS.contains(&batch_rows) {
            env.invalid(format!(
                "RETENTION_BATCH_ROWS must be from {} to {}, not {batch_rows}",
                BATCH_ROWS.start(),
                BATCH_ROWS.end()
            ));
        }
        Self { days, batch_rows }
    }

    /// What was received before this is scrubbed.
    pub fn horizon(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - chrono::Duration::days(i64::from(self.days))
    }
}

/// What a run did (with `dry_run`, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub dry_run: bool,
    /// Another run held the lock: this one did nothing.
    pub skipped: bool,
    pub horizon: Option<DateTime<Utc>>,
    /// Months whose partition was made (`YYYY-MM`).
    pub partitions_created: Vec<String>,
    pub deliveries_walked: i64,
    pub deliveries_scrubbed: i64,
    /// Statements the walk took.
    pub batches: u32,
    pub notifications_scrubbed: i64,
    pub partitions_dropped: Vec<String>,
    /// Droppable partitions whose lock could not be had in time; the next
    /// run tries again.
    pub partitions_busy: Vec<String>,
}

/// One run, now (see the module doc).
pub async fn run_once(pool: &PgPool, settings: Settings, dry_run: bool) -> anyhow::Result<Report> {
    let mut conn = pool
        .acquire()
        .await
        .context("retention: connecting to PostgreSQL")?;
    if !retention::try_lock(&mut conn).await? {
        return Ok(Report {
            dry_run,
            skipped: true,
            ..Report::default()
        });
    }
    let result = run_locked(&mut conn, settings, dry_run, Utc::now()).await;
    if retention::unlock(&mut conn).await.is_err() {
        // Never hand the pool a connection that may still hold the lock:
        // closed, it releases it.
        drop(conn.detach());
    }
    result
}

async fn run_locked(
    conn: &mut PgConnection,
    settings: Settings,
    dry_run: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<Report> {
    let horizon = settings.horizon(now);
    let mut report = Report {
        dry_run,
        horizon: Some(horizon),
        ..Report::default()
    };
    if !dry_run {
        report.partitions_created = ensure_partitions(conn, now).await?;
    }

    let mut after = 0;
    loop {
        let batch = scrub::batch(conn, horizon, after, settings.batch_rows, dry_run)
            .await
            .context("retention: scrubbing deliveries")?;
        report.batches += 1;
        report.deliveries_walked += batch.walked;
        report.deliveries_scrubbed += batch.scrubbed;
        let Some(last) = batch.last_row else { break };
        after = last;
        if batch.scrubbed > 0 && !dry_run {
            tokio::time::sleep(BATCH_PAUSE).await;
        }
    }

    loop {
        let scrubbed =
            notifications::scrub::sent_before(conn, horizon, settings.batch_rows, dry_run)
                .await
                .context("retention: scrubbing notifications")?;
        report.notifications_scrubbed += scrubbed;
        if dry_run || scrubbed < settings.batch_rows {
            break;
        }
        tokio::time::sleep(BATCH_PAUSE).await;
    }

    for partition in partitions::droppable(conn, horizon)
        .await
        .context("retention: finding droppable months")?
    {
        if dry_run {
            report.partitions_dropped.push(partition.name);
            continue;
        }
        match partitions::drop_partition(conn, &partition, horizon).await {
            Ok(true) => report.partitions_dropped.push(partition.name),
            Ok(false) => {}
            Err(e) if lock_not_available(&e) => report.partitions_busy.push(partition.name),
            Err(e) => return Err(e).context("retention: dropping a month"),
        }
    }
    Ok(report)
}

/// Makes this month's partition and the next ones', and those of months
/// with rows in the default partition; the months made, as `YYYY-MM`.
async fn ensure_partitions(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<String>> {
    let this_month = partitions::month_start(now);
    let mut months: Vec<NaiveDate> = (0..=MONTHS_AHEAD)
        .map(|n| this_month + Months::new(n))
        .collect();
    months.extend(partitions::months_in_default(conn).await?);
    months.sort_unstable();
    months.dedup();
    let mut created = Vec::new();
    for month in months {
        match partitions::ensure_month(conn, month).await {
            Ok(true) => created.push(month.format("%Y-%m").to_string()),
            Ok(false) => {}
            // The default partition catches the month's rows meanwhile.
            Err(e) if lock_not_available(&e) => {
                tracing::warn!(month = %month.format("%Y-%m"), "a month's partition waits for its lock; next run");
            }
            Err(e) => return Err(e).context("retention: making a month's partition"),
        }
    }
    Ok(created)
}

/// PostgreSQL's `lock_not_available` (55P03): a lock timeout.
fn lock_not_available(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(sqlx::error::DatabaseError::code)
        .is_some_and(|code| code == "55P03")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut env = EnvReader::new(move |name: &str| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        });
        let settings = Settings::from_env(&mut env);
        env.finish().map(|()| settings).map_err(|e| e.to_string())
    }

    #[test]
    fn ninety_days_and_500_rows_by_default() {
        assert_eq!(settings(&[]).unwrap(), Settings::default());
        assert_eq!(Settings::default().days, 90);
    }

    #[test]
    fn zero_days_and_absurd_values_are_refused_naming_the_variable() {
        for days in ["0", "6", "3651", "-1", "ninety"] {
            let error = settings(&[("RETENTION_DAYS", days)]).unwrap_err();
            assert!(error.contains("RETENTION_DAYS"), "{days}: {error}");
        }
        assert_eq!(settings(&[("RETENTION_DAYS", "7")]).unwrap().days, 7);
        let error = settings(&[("RETENTION_BATCH_ROWS", "0")]).unwrap_err();
        assert!(error.contains("RETENTION_BATCH_ROWS"), "{error}");
    }

    #[test]
    fn the_horizon_is_the_days_before_now() {
        let now = "2027-04-10T12:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let horizon = Settings::default().horizon(now);
        assert_eq!(
            horizon,
            "2027-01-10T12:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }
}
