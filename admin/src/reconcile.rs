//! `ledgerhook-admin reconcile --provider crossmint|stripe`: the on-demand
//! run of `ledgerhook_worker::reconcile`, printing what the provider said
//! about each order (and, for Stripe, each event it could not deliver) and,
//! unless told not to, waiting for the workers' outcome of each payment it
//! recorded. `--order` asks about one order; `--dry-run` records nothing.

use crate::terminal::Shown;
use std::collections::{BTreeMap, HashMap};
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
use ledgerhook_providers::stripe::reads::StripeReads;
use ledgerhook_store::audit::{self as audit_log, Entry};

use ledgerhook_worker::reconcile::{self, Only, Scope};

/// Which provider to reconcile, as the command line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    Crossmint,
    Stripe,
}

pub async fn reconcile(
    pool: &PgPool,
    peers: &Peers,
    operator: Option<&str>,
    source: Source,
    scope: Scope,
    only: Only<'_>,
    wait: &Wait,
) -> anyhow::Result<Printout> {
    let mut env = EnvReader::from_process();
    let run = match source {
        Source::Crossmint => {
            let crossmint = OrdersApi::from_env(&mut env);
            env.finish()?;
            let crossmint = crossmint.context("the Crossmint settings")?;
            reconcile::run(pool, &crossmint, scope, only).await?
        }
        Source::Stripe => {
            let stripe = StripeReads::from_env(&mut env);
            env.finish()?;
            let stripe = stripe.context("the Stripe settings")?;
            reconcile::stripe::run(pool, &stripe, scope, only).await?
        }
    };
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
    // The workers' outcome of each delivery this run recorded, by its id.
    let outcome_of: HashMap<&str, &str> = run
        .recorded
        .iter()
        .zip(&outcomes)
        .filter_map(|(d, o)| Some((d.delivery_id.as_str(), o.as_deref()?)))
        .collect();

    let mut text = String::new();
    let mut listed_events = Vec::new();
    let mut event_counts = BTreeMap::<&str, usize>::new();
    if let Some(error) = &run.events_error {
        writeln!(
            text,
            "Stripe's undelivered events could not be listed: {}",
            Shown(error)
        )?;
    }
    for event in &run.events {
        *event_counts.entry(event.result.as_str()).or_default() += 1;
        let outcome = outcome_of.get(event.event_id.as_str()).copied();
        let mut line = format!(
            "event {}	{}	-> {}",
            Shown(&event.event_id),
            Shown(&event.event_type),
            event.result.as_str()
        );
        if let Some(outcome) = outcome {
            write!(line, " ({})", Shown(outcome))?;
        }
        writeln!(text, "{line}")?;
        let mut entry = serde_json::to_value(event)?;
        entry["outcome"] = json!(outcome);
        listed_events.push(entry);
    }
    if source == Source::Stripe && only.order.is_none() {
        writeln!(
            text,
            "{} events Stripe could not deliver: {} recorded and sent to the workers, {} recorded before{}",
            run.events.len(),
            event_counts.get("recorded").unwrap_or(&0),
            event_counts.get("already_recorded").unwrap_or(&0),
            match event_counts.get("would_record") {
                Some(n) => format!(", {n} to record (dry run)"),
                None => String::new(),
            }
        )?;
    }

    let mut listed = Vec::new();
    let mut counts = BTreeMap::<&str, usize>::new();
    for finding in &run.findings {
        *counts.entry(finding.result.as_str()).or_default() += 1;
        let outcome = outcome_of
            .get(format!("reconcile:{}", finding.provider_order_id).as_str())
            .copied();
        let (who, said) = match source {
            Source::Crossmint => ("Crossmint", finding.crossmint_payment_status.as_deref()),
            Source::Stripe => ("Stripe", finding.stripe_payment_status.as_deref()),
        };
        let mut line = format!(
            "{}\t{}\t{}\tcreated {}\t{}\t{who}: {}\t-> {}",
            Shown(&finding.provider_order_id),
            Shown(&finding.user_id),
            Shown(&finding.package_id),
            finding.created_at.format("%Y-%m-%dT%H:%M:%SZ"),
            finding.status,
            Shown(said.unwrap_or("no answer")),
            finding.result.as_str(),
        );
        if let Some(outcome) = outcome {
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
        "{} orders asked about: {} paid and sent to the workers, {} recorded by an earlier run, {} not paid, {} failed{}",
        run.findings.len(),
        counts.get("recorded").unwrap_or(&0),
        counts.get("already_recorded").unwrap_or(&0),
        counts.get("not_paid").unwrap_or(&0),
        counts.get("failed").unwrap_or(&0),
        match counts.get("would_record") {
            Some(n) => format!(", {n} paid and to record (dry run: nothing recorded)"),
            None => String::new(),
        }
    )?;
    let result = json!({
        "provider": source_name(source),
        "dryRun": only.dry_run,
        "orders": listed,
        "counts": counts,
        "events": listed_events,
        "eventCounts": event_counts,
        "eventsError": run.events_error,
    });
    let audit_id = audit_log::record(
        pool,
        Entry {
            operator,
            reason: None,
            command: "reconcile",
            arguments: json!({
                "provider": source_name(source),
                "order": only.order,
                "dryRun": only.dry_run,
                "olderThanSecs": scope.older_than.as_secs(),
                "withinSecs": scope.within.as_secs(),
                "limit": scope.limit,
            }),
            result: json!({
                "counts": counts,
                "eventCounts": event_counts,
                "recorded": run.recorded.iter().map(|d| &d.delivery_id).collect::<Vec<_>>(),
            }),
        },
    )
    .await?;
    let mut json = result;
    json["auditId"] = json!(audit_id);
    Ok(Printout::done(json, text))
}

fn source_name(source: Source) -> &'static str {
    match source {
        Source::Crossmint => "crossmint",
        Source::Stripe => "stripe",
    }
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
