//! `ledgerhook-admin reconcile`: the on-demand run of `ledgerhook_worker::reconcile`,
//! printing what Crossmint said about each order and, unless told not to,
//! waiting for the workers' outcome of each payment it found.

use crate::terminal::Shown;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ledgerhook_runtime::config::EnvReader;
use ledgerhook_store::deliveries::operator;
use serde_json::json;
use sqlx::PgPool;

use super::cli::Wait;
use super::{Admin, Peers, Printout};
use ledgerhook_providers::crossmint::OrdersApi;
use ledgerhook_store::audit::{self as audit_log, Entry};

use ledgerhook_worker::reconcile::{self, FindingResult, Scope};

pub async fn reconcile(
    pool: &PgPool,
    peers: &Peers,
    operator: Option<&str>,
    scope: Scope,
    wait: &Wait,
) -> anyhow::Result<Printout> {
    let mut env = EnvReader::from_process();
    let crossmint = OrdersApi::from_env(&mut env);
    env.finish()?;
    let crossmint = crossmint.context("the Crossmint settings")?;

    let run = reconcile::run(pool, &crossmint, scope).await?;
    let mut outcomes = vec![None; run.recorded.len()];
    if !run.recorded.is_empty() {
        let admin = Admin::connect(pool.clone(), peers.broker()?, &peers.queue_prefix).await?;
        let published = admin.publish_recorded(&run.recorded).await;
        admin.close().await;
        published?;
        if !wait.no_wait {
            wait_for_outcomes(
                pool,
                &run.recorded.iter().map(|d| d.row).collect::<Vec<_>>(),
                &mut outcomes,
                Duration::from_secs(wait.wait_secs),
            )
            .await?;
        }
    }

    let mut text = String::new();
    let mut listed = Vec::new();
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    let mut recorded = run.recorded.iter().zip(&outcomes);
    for finding in &run.findings {
        *counts.entry(finding.result.as_str()).or_default() += 1;
        let outcome = if finding.result == FindingResult::Recorded {
            recorded.next().and_then(|(_, outcome)| outcome.clone())
        } else {
            None
        };
        let said = finding
            .crossmint_payment_status
            .as_deref()
            .unwrap_or("no answer");
        let mut line = format!(
            "{}\t{}\t{}\tcreated {}\t{}\tCrossmint: {}\t-> {}",
            Shown(&finding.provider_order_id),
            Shown(&finding.user_id),
            Shown(&finding.package_id),
            finding.created_at.format("%Y-%m-%dT%H:%M:%SZ"),
            finding.status,
            Shown(said),
            finding.result.as_str(),
        );
        if let Some(outcome) = &outcome {
            write!(line, " ({})", Shown(outcome))?;
        }
        if let Some(detail) = &finding.detail {
            write!(line, ": {}", Shown(detail))?;
        }
        writeln!(text, "{line}")?;
        let mut entry = serde_json::to_value(finding)?;
        entry["outcome"] = json!(outcome);
        listed.push(entry);
    }
    writeln!(
        text,
        "{} orders asked about: {} paid and sent to the workers, {} recorded by an earlier run, {} not paid, {} failed",
        run.findings.len(),
        counts.get("recorded").unwrap_or(&0),
        counts.get("already_recorded").unwrap_or(&0),
        counts.get("not_paid").unwrap_or(&0),
        counts.get("failed").unwrap_or(&0),
    )?;
    let result = json!({"orders": listed, "counts": counts});
    let audit_id = audit_log::record(
        pool,
        Entry {
            operator,
            reason: None,
            command: "reconcile",
            arguments: json!({
                "olderThanSecs": scope.older_than.as_secs(),
                "withinSecs": scope.within.as_secs(),
                "limit": scope.limit,
            }),
            result: json!({
                "counts": counts,
                "recorded": run.recorded.iter().map(|d| &d.delivery_id).collect::<Vec<_>>(),
            }),
        },
    )
    .await?;
    let mut json = result;
    json["auditId"] = json!(audit_id);
    Ok(Printout::done(json, text))
}

/// Fills in each row's outcome once the workers have processed it, for up
/// to `wait`.
async fn wait_for_outcomes(
    pool: &PgPool,
    rows: &[i64],
    outcomes: &mut [Option<String>],
    wait: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + wait;
    loop {
        for (row, outcome) in rows.iter().zip(outcomes.iter_mut()) {
            if outcome.is_none() {
                *outcome = operator::outcome(pool, *row).await?;
            }
        }
        if outcomes.iter().all(Option::is_some) || Instant::now() > deadline {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
