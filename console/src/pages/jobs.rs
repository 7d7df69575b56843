//! Replaying everything a filter matches, as a background job: started
//! from the deliveries list (or the parked page), run by this console a
//! batch at a time through ledgerhook-admin's replay (processed deliveries
//! are never sent again), with its progress on its page, a cap, and a
//! cancel that takes effect between batches. Start, cancel and end are in
//! the audit trail.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use ledgerhook_admin::{Action, Admin, Selection};
use ledgerhook_store::audit::{self as audit_log, Entry};
use ledgerhook_store::deliveries::browse::{self, Filter};
use ledgerhook_store::replay_jobs::{self, Job};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;

use super::deliveries::Asked;
use super::layout::{self, Section, at, at_opt, csrf};
use super::orders::clean_reason;
use crate::app::AppState;
use crate::auth::Signed;
use crate::metrics;
use crate::refusal::Refusal;

/// Deliveries looked at per batch (one replay, one progress write).
const BATCH: i64 = 100;
/// The most one job may look at; the form's default.
pub const MAX_CAP: i32 = 10_000;
const DEFAULT_CAP: i32 = 1_000;
/// A running job whose heartbeat is older than this has lost its console.
pub const STALE_SECS: i64 = 120;

/// The form that starts a job over `asked`.
pub fn start_form(signed: &Signed, asked: &Asked) -> Markup {
    html! {
        form method="post" action="/jobs" {
            (csrf(signed))
            (asked.hidden())
            label { "At most " input name="cap" type="number" min="1" max=(MAX_CAP) value=(DEFAULT_CAP) required; " deliveries" }
            label { "Reason " input name="reason" required maxlength="500" size="50"; }
            button type="submit" { "Start the replay job" }
        }
    }
}

#[derive(Deserialize)]
pub struct Start {
    #[serde(flatten)]
    asked: Asked,
    #[serde(default)]
    cap: String,
    #[serde(default)]
    reason: String,
}

pub async fn start(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Form(form): Form<Start>,
) -> Result<Response, Refusal> {
    let operator = signed.may_act()?.to_owned();
    let filter = form.asked.filter()?;
    let reason = clean_reason(&form.reason)?;
    let cap = form
        .cap
        .trim()
        .parse::<i32>()
        .ok()
        .filter(|c| (1..=MAX_CAP).contains(c))
        .ok_or_else(|| {
            Refusal::bad_input(
                "INVALID_CAP",
                format!("cap: a whole number from 1 to {MAX_CAP}"),
            )
        })?;
    // One at a time: two jobs over overlapping filters would only race.
    if let Some(running) = replay_jobs::running(&state.pool, STALE_SECS).await? {
        return Err(Refusal::new(
            axum::http::StatusCode::CONFLICT,
            "JOB_RUNNING",
            format!("replay job {running} is still running: wait for it, or cancel it first"),
        ));
    }
    let filter_json = serde_json::to_value(&form.asked).map_err(anyhow::Error::from)?;
    let mut tx = state.pool.begin().await?;
    let id = replay_jobs::create(&mut tx, &operator, reason, &filter_json, cap).await?;
    audit_log::record(
        &mut *tx,
        Entry {
            operator: Some(&operator),
            reason: Some(reason),
            command: "console replay job",
            arguments: json!({"filter": filter_json, "cap": cap}),
            result: json!({"job": id}),
        },
    )
    .await?;
    tx.commit().await?;
    metrics::action("replay_job", true);
    tokio::spawn(run(state.clone(), id, filter, cap, operator));
    Ok(Redirect::to(&format!("/jobs/{id}")).into_response())
}

/// Runs the job to its end, cancel or failure, and records which.
async fn run(state: AppState, id: i64, filter: Filter, cap: i32, operator: String) {
    let (ended, error) = match replay(&state, id, filter, cap, &operator).await {
        Ok(true) => ("cancelled", None),
        Ok(false) => ("done", None),
        Err(e) => {
            tracing::error!(job = id, error = format!("{e:#}"), "replay job failed");
            (
                "failed",
                Some(format!("{e:#}").chars().take(500).collect::<String>()),
            )
        }
    };
    if let Err(e) = record_end(&state, id, ended, error.as_deref(), &operator).await {
        tracing::error!(job = id, error = %e, "could not record the end of a replay job");
    }
}

/// The job's end and its audit row, in one transaction.
async fn record_end(
    state: &AppState,
    id: i64,
    ended: &str,
    error: Option<&str>,
    operator: &str,
) -> Result<(), sqlx::Error> {
    let mut tx = state.pool.begin().await?;
    replay_jobs::finish(&mut tx, id, ended, error).await?;
    audit_log::record(
        &mut *tx,
        Entry {
            operator: Some(operator),
            reason: None,
            command: "console replay job ended",
            arguments: json!({"job": id}),
            result: json!({"state": ended, "error": error}),
        },
    )
    .await?;
    tx.commit().await
}

/// Replays a batch at a time; `Ok(true)` when cancelled.
async fn replay(
    state: &AppState,
    id: i64,
    mut filter: Filter,
    cap: i32,
    operator: &str,
) -> anyhow::Result<bool> {
    let admin = Admin::connect(
        state.pool.clone(),
        state.peers.broker()?,
        &state.peers.queue_prefix,
    )
    .await?;
    let mut looked: i64 = 0;
    let cancelled = loop {
        let batch = BATCH.min(i64::from(cap) - looked);
        if batch <= 0 {
            break false;
        }
        let rows = browse::page(&state.pool, &filter, batch).await?;
        let Some(last) = rows.last() else {
            break false;
        };
        filter.before = Some(last.row);
        looked += i64::try_from(rows.len()).unwrap_or(i64::MAX);
        let replayed = admin
            .replay(&Selection::Rows(rows.iter().map(|r| r.row).collect()), None)
            .await?;
        let sent_rows: Vec<i64> = replayed
            .iter()
            .filter(|r| matches!(r.action, Action::Redriven | Action::Queued))
            .filter_map(|r| r.row)
            .collect();
        let sent = sent_rows.len();
        // Which deliveries went out again, not only how many.
        if !sent_rows.is_empty() {
            audit_log::record(
                &state.pool,
                Entry {
                    operator: Some(operator),
                    reason: None,
                    command: "console replay job batch",
                    arguments: json!({"job": id}),
                    result: json!({"sentRows": sent_rows}),
                },
            )
            .await?;
        }
        let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
        let cancel = replay_jobs::progress(
            &state.pool,
            id,
            count(rows.len()),
            count(sent),
            count(replayed.len() - sent),
        )
        .await?;
        if cancel {
            break true;
        }
    };
    admin.close().await;
    Ok(cancelled)
}

fn parse_id(text: &str) -> Result<i64, Refusal> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| Refusal::bad_input("INVALID_JOB", "a job's id is a positive number"))
}

pub async fn page(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Path(id): Path<String>,
) -> Result<Markup, Refusal> {
    let id = parse_id(&id)?;
    let job = replay_jobs::get(&state.pool, id)
        .await?
        .ok_or_else(|| Refusal::not_found(format!("no replay job {id}")))?;
    let body = html! { (job_block(&signed, &job)) };
    Ok(layout::page(
        &signed,
        Section::Parked,
        &format!("Replay job {id}"),
        body,
    ))
}

/// What the job's page shows; polled by htmx every two seconds while the
/// job runs (the block replaces itself).
pub fn job_block(signed: &Signed, job: &Job) -> Markup {
    let stale = job.state == "running"
        && (chrono::Utc::now() - job.heartbeat_at).num_seconds() > STALE_SECS;
    let running = job.state == "running" && !stale;
    let state = if stale {
        "interrupted (its console stopped)"
    } else {
        job.state.as_str()
    };
    html! {
        div id=(crate::auth::session::POLLING_ELEMENT) hx-get=[running.then(|| format!("/jobs/{}", job.id))] hx-trigger=[running.then_some("every 2s")]
            hx-select="#job" hx-target="#job" hx-swap="outerHTML" {
            dl.facts {
                dt { "State" } dd #job-state { (state) @if job.cancel_requested && running { " (cancel asked)" } }
                dt { "Looked at" } dd #job-matched { (job.matched) " of at most " (job.cap) }
                dt { "Sent again" } dd #job-sent { (job.sent) }
                dt { "Processed already (not sent)" } dd { (job.skipped) }
                dt { "Started" } dd { (at(&job.created_at)) " by " (job.created_by) }
                dt { "Reason" } dd { (job.reason) }
                dt { "Filter" } dd { code { (job.filter.to_string()) } }
                dt { "Ended" } dd { (at_opt(job.finished_at.as_ref())) }
                @if let Some(error) = &job.error { dt { "Error" } dd.refusal { (error) } }
            }
            @if job.state == "running" && !job.cancel_requested {
                form method="post" action={ "/jobs/" (job.id) "/cancel" } {
                    (csrf(signed))
                    button.danger type="submit" { "Cancel" }
                }
            }
        }
    }
}

pub async fn cancel(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    let operator = signed.may_act()?.to_owned();
    let id = parse_id(&id)?;
    let mut tx = state.pool.begin().await?;
    let asked = replay_jobs::request_cancel(&mut tx, id, STALE_SECS).await?;
    audit_log::record(
        &mut *tx,
        Entry {
            operator: Some(&operator),
            reason: None,
            command: "console replay job cancel",
            arguments: json!({"job": id}),
            result: json!({"changed": asked}),
        },
    )
    .await?;
    tx.commit().await?;
    metrics::action("replay_job_cancel", asked);
    Ok(Redirect::to(&format!("/jobs/{id}")).into_response())
}

/// The newest jobs, for the parked page.
pub fn jobs_table(jobs: &[Job]) -> Markup {
    html! {
        @if jobs.is_empty() { p.none { "No replay job yet." } }
        @else {
            table {
                thead { tr { th { "Job" } th { "Started" } th { "By" } th { "State" } th.num { "Looked at" } th.num { "Sent" } } }
                tbody { @for j in jobs { tr {
                    td { a href={ "/jobs/" (j.id) } { "#" (j.id) } }
                    td { (at(&j.created_at)) } td { (j.created_by) } td { (j.state) }
                    td.num { (j.matched) } td.num { (j.sent) }
                } } }
            }
        }
    }
}
