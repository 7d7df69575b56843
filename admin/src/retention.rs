//! `ledgerhook-admin retention run [--dry-run]`: the workers' retention job
//! (`ledgerhook_worker::retention`), once, now, with `RETENTION_DAYS` and
//! `RETENTION_BATCH_ROWS` read as the workers read them. A run spans many
//! short transactions (bounded batches); its audit row is written when it
//! ends, with what it did.

use std::fmt::Write as _;

use ledgerhook_runtime::config::EnvReader;
use ledgerhook_store::audit::{self as audit_log, Entry};
use ledgerhook_worker::retention::{self, Settings};
use serde_json::json;
use sqlx::PgPool;

use super::Printout;

pub async fn run(pool: &PgPool, operator: Option<&str>, dry_run: bool) -> anyhow::Result<Printout> {
    let mut env = EnvReader::from_process();
    let settings = Settings::from_env(&mut env);
    env.finish()?;
    let report = retention::run_once(pool, settings, dry_run).await?;
    audit_log::record(
        pool,
        Entry {
            operator,
            reason: None,
            command: "retention",
            arguments: json!({"dryRun": dry_run, "days": settings.days}),
            result: serde_json::to_value(&report)?,
        },
    )
    .await?;
    if report.skipped {
        return Ok(Printout::refused(
            "RETENTION_RUNNING",
            "another retention run is under way (a worker's, or another command's); nothing done"
                .into(),
            json!({"report": report}),
        ));
    }
    let would = if dry_run { "would be " } else { "" };
    let mut text = String::new();
    if let Some(horizon) = report.horizon {
        writeln!(
            text,
            "retention: {} days, everything received before {horizon}{}",
            settings.days,
            if dry_run {
                " (dry run: nothing changed)"
            } else {
                ""
            }
        )?;
    }
    if !report.partitions_created.is_empty() {
        writeln!(
            text,
            "partitions made: {}",
            report.partitions_created.join(", ")
        )?;
    }
    writeln!(
        text,
        "deliveries: {} {would}scrubbed of {} looked at, in {} batches of at most {}",
        report.deliveries_scrubbed, report.deliveries_walked, report.batches, settings.batch_rows
    )?;
    writeln!(
        text,
        "notifications: {} {would}scrubbed",
        report.notifications_scrubbed
    )?;
    writeln!(
        text,
        "partitions {would}dropped: {}",
        if report.partitions_dropped.is_empty() {
            "none".to_owned()
        } else {
            report.partitions_dropped.join(", ")
        }
    )?;
    if !report.partitions_busy.is_empty() {
        writeln!(
            text,
            "kept for the next run (their lock was busy): {}",
            report.partitions_busy.join(", ")
        )?;
    }
    Ok(Printout::done(
        json!({"days": settings.days, "batchRows": settings.batch_rows, "report": report}),
        text,
    ))
}
