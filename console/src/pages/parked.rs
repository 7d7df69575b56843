//! Parked deliveries: what the worker gave up on, with the reason, newest
//! first. Each links to its page, where it can be redriven; all of them
//! can be redriven as a background replay job ([`super::jobs`]).

use axum::Extension;
use axum::extract::State;
use ledgerhook_store::deliveries::operator;
use ledgerhook_store::replay_jobs;

use super::deliveries::Asked;
use maud::{Markup, html};

use super::layout::{self, Section, at, at_opt};
use crate::app::AppState;
use crate::auth::Signed;
use crate::refusal::Refusal;

const LISTED: i64 = 200;
const JOBS: i64 = 20;

pub async fn list(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
) -> Result<Markup, Refusal> {
    let parked = operator::parked(&state.pool, LISTED).await?;
    let jobs = replay_jobs::newest(&state.pool, JOBS).await?;
    let body = html! {
        @if signed.may_act().is_ok() && !parked.is_empty() {
            details.actions {
                summary { "Redrive every parked delivery…" }
                p.none { "A background job, batch by batch: each parked delivery is sent to the work queue again. Fix the cause first." }
                (super::jobs::start_form(&signed, &Asked::parked()))
            }
        }
        @if parked.is_empty() { p.none { "Nothing is parked." } }
        @else {
            p { "The newest " (parked.len()) " parked deliveries. Fix the cause first (the reason says what failed), then redrive from a delivery's page." }
            table {
                thead { tr { th { "Row" } th { "Delivery id" } th { "Received" } th { "Parked" } th { "Reason" } } }
                tbody { @for d in &parked { tr {
                    td { a href={ "/deliveries/" (d.id) } { "#" (d.id) } }
                    td { a href={ "/deliveries/" (d.id) } { code { (d.delivery_id) } } }
                    td { (at(&d.received_at)) }
                    td { (at_opt(d.processed_at.as_ref())) }
                    td { (d.outcome_detail.as_deref().unwrap_or("")) }
                } } }
            }
        }
        h2 { "Replay jobs" }
        (super::jobs::jobs_table(&jobs))
    };
    Ok(layout::page(
        &signed,
        Section::Parked,
        "Parked deliveries",
        body,
    ))
}
