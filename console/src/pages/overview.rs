//! The overview: is money flowing? The newest deliveries by outcome and
//! their rate, the newest ledger entries, what waits (outbox, work queue,
//! parked, held for review), and whether processing is paused. Every read
//! is bounded (the newest rows by primary key, partial indexes, small
//! tables, the broker's passive declares), so the page costs the same on a
//! year-old system.

use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use ledgerhook_store::{control, deliveries, ledger, overview};
use maud::{Markup, html};

use super::layout::{self, Section, at};
use crate::app::AppState;
use crate::auth::Signed;
use crate::refusal::Refusal;

/// The newest rows the overview counts.
const SAMPLE: i64 = 1000;
/// How long the page waits for the broker before showing its queues as unknown.
const BROKER_WAIT: Duration = Duration::from_secs(2);

pub async fn page(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
) -> Result<Markup, Refusal> {
    let switch = control::read(&state.pool).await?;
    let recent = overview::recent_deliveries(&state.pool, SAMPLE).await?;
    let ledger_kinds = overview::recent_ledger(&state.pool, SAMPLE).await?;
    let (held, shortfall_orders, shortfall_credits) =
        ledger::orders::review_counts(&state.pool).await?;
    let (outbox, outbox_age) = deliveries::outbox::unpublished_backlog(&state.pool).await?;
    let queues = tokio::time::timeout(BROKER_WAIT, ledgerhook_admin::control::queues(&state.peers))
        .await
        .map_err(anyhow::Error::from)
        .and_then(|looked| looked);
    let span = match (recent.oldest, recent.newest) {
        (Some(oldest), Some(newest)) => (newest - oldest).num_milliseconds().max(1),
        _ => 0,
    };
    // Deliveries per second over the span the sample covers (integer
    // tenths: a rate for the eye, not money).
    let rate_tenths = if span > 0 && recent.rows > 1 {
        (recent.rows - 1) * 10_000 / span
    } else {
        0
    };
    let body = html! {
        div.tiles {
            div class={ "tile" @if switch.paused { " bad" } } {
                div.value { @if switch.paused { "PAUSED" } @else { "running" } }
                div.label { "processing"
                    @if let Some(by) = &switch.changed_by { " · since " (at(&switch.since)) " by " (by) } }
            }
            div.tile { div.value { (rate_tenths / 10) "." (rate_tenths % 10) "/s" } div.label { "deliveries, over the newest " (recent.rows) } }
            div class={ "tile" @if held > 0 { " warn" } } {
                div.value { a href="/held" { (held) } } div.label { "orders held for review" }
            }
            @match &queues {
                Ok(q) => {
                    div class={ "tile" @if q.parked.unwrap_or(0) > 0 { " bad" } } {
                        div.value { a href="/parked" { (q.parked.unwrap_or(0)) } } div.label { "parked deliveries (parked queue)" }
                    }
                    div.tile {
                        @if let Some((ready, consumers)) = q.work {
                            div.value { (ready) } div.label { "in the work queue, " (consumers) " workers attached" }
                        } @else {
                            div.value { "—" } div.label { "work queue not declared yet" }
                        }
                    }
                }
                Err(e) => {
                    div.tile.bad { div.value { "?" } div.label { "the broker did not answer: " (format!("{e:#}").chars().take(200).collect::<String>()) } }
                }
            }
            div class={ "tile" @if outbox_age > 60.0 { " warn" } } {
                div.value { (outbox) } div.label { "awaiting the broker's confirm; oldest " (outbox_age.round()) " s" }
            }
            @if shortfall_orders > 0 {
                div.tile.warn { div.value { (shortfall_credits) } div.label { "credits owed by " (shortfall_orders) " revoked orders" } }
            }
        }
        h2 { "The newest " (recent.rows) " deliveries, by outcome" }
        @if let (Some(oldest), Some(newest)) = (recent.oldest, recent.newest) {
            p.none { "Received from " (at(&oldest)) " to " (at(&newest)) "." }
        }
        table {
            thead { tr { th { "Outcome" } th.num { "Deliveries" } } }
            tbody { @for (outcome, count) in &recent.by_outcome { tr {
                td class={ "outcome-" (outcome) } { a href={ "/deliveries?outcome=" (outcome) } { (outcome) } }
                td.num { (count) }
            } } }
        }
        h2 { "The newest " (ledger_kinds.iter().map(|k| k.1).sum::<i64>()) " ledger entries, by kind" }
        table {
            thead { tr { th { "Kind" } th.num { "Entries" } th.num { "Credits" } } }
            tbody { @for (kind, count, credits) in &ledger_kinds { tr { td { (kind) } td.num { (count) } td.num { (credits) } } } }
        }
    };
    Ok(layout::page(&signed, Section::Overview, "Overview", body))
}
