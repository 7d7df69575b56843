//! One delivery: what arrived (headers, the body pretty-printed with the
//! buyer's personal data masked until revealed), which secret verified it,
//! what the worker made of it, and what it changed (its lineage: the
//! orders, the order events and the ledger entries it caused). A parked
//! delivery can be redriven from here.

use axum::Extension;
use axum::extract::{Path, State};
use ledgerhook_admin::cli::Wait;
use ledgerhook_admin::{Printout, Selection};
use ledgerhook_domain::{PaymentEvent, Provider};
use ledgerhook_runtime::http::CREDENTIAL_HEADERS;
use ledgerhook_store::audit::{self as audit_log, Entry};
use ledgerhook_store::deliveries::attempts;
use ledgerhook_store::deliveries::browse::{self, Whole};
use ledgerhook_store::ledger::inspect;
use maud::{Markup, html};
use serde_json::json;

use super::layout::{self, Section, at, at_opt, csrf, order_link};
use crate::app::AppState;
use crate::auth::Signed;
use crate::mask;
use crate::metrics;
use crate::refusal::Refusal;

/// Attempts shown (a delivery is retried a handful of times, then parked;
/// redrives start again).
const MAX_ATTEMPTS_SHOWN: i64 = 100;
/// How long a redrive waits for the worker's outcome before answering.
const REDRIVE_WAIT_SECS: u64 = 10;

/// A row number from the path, or a clear refusal.
pub fn parse_row(text: &str) -> Result<i64, Refusal> {
    text.parse::<i64>()
        .ok()
        .filter(|row| *row > 0)
        .ok_or_else(|| Refusal::bad_input("INVALID_ROW", "a delivery's row is a positive number"))
}

async fn load(state: &AppState, row: &str) -> Result<Whole, Refusal> {
    let row = parse_row(row)?;
    browse::whole(&state.pool, row)
        .await?
        .ok_or_else(|| Refusal::not_found(format!("no delivery in row {row}")))
}

pub async fn page(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Path(row): Path<String>,
) -> Result<Markup, Refusal> {
    let delivery = load(&state, &row).await?;
    render(&state, &signed, &delivery, false, None).await
}

/// Shows the body unmasked, and records who looked, in the audit trail.
/// Viewers may: it is looking, not acting; the audit row says who.
pub async fn reveal(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Path(row): Path<String>,
) -> Result<Markup, Refusal> {
    let delivery = load(&state, &row).await?;
    audit_log::record(
        &state.pool,
        Entry {
            operator: Some(&signed.name),
            reason: None,
            command: "console reveal",
            arguments: json!({"delivery": delivery.delivery_id, "row": delivery.row}),
            result: json!({"revealed": true}),
        },
    )
    .await?;
    metrics::action("reveal", true);
    render(&state, &signed, &delivery, true, None).await
}

pub async fn redrive(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Path(row): Path<String>,
) -> Result<Markup, Refusal> {
    let operator = signed.may_act()?.to_owned();
    let delivery = load(&state, &row).await?;
    let printout = ledgerhook_admin::deliveries::replay(
        &state.pool,
        &state.peers,
        Some(&operator),
        // Its row: a delivery id is unique per provider only.
        Selection::Rows(vec![delivery.row]),
        &Wait {
            no_wait: false,
            wait_secs: REDRIVE_WAIT_SECS,
        },
    )
    .await?;
    metrics::action("redrive", printout.refused.is_none());
    // Read again: the redrive changed its outcome.
    let delivery = load(&state, &row).await?;
    render(&state, &signed, &delivery, false, Some(&printout)).await
}

async fn render(
    state: &AppState,
    signed: &Signed,
    d: &Whole,
    revealed: bool,
    done: Option<&Printout>,
) -> Result<Markup, Refusal> {
    let lineage = lineage(state, d).await?;
    let failed = attempts::newest_of_delivery(&state.pool, d.row, MAX_ATTEMPTS_SHOWN).await?;
    let succeeded = match (&d.processed_at, d.outcome.as_deref()) {
        (Some(at), Some(outcome)) if outcome != "parked" => Some((at, outcome)),
        _ => None,
    };
    let headers: Vec<(String, String)> = d
        .headers
        .as_array()
        .map(|pairs| {
            pairs
                .iter()
                .filter_map(|pair| {
                    let name = pair.get(0)?.as_str()?.to_owned();
                    let value = pair.get(1)?.as_str()?.to_owned();
                    Some((name, value))
                })
                .collect()
        })
        .unwrap_or_default();
    let body = shown_body(&d.body, revealed);
    let parked = d.outcome.as_deref() == Some("parked");
    let markup = html! {
        @if let Some(done) = done { (layout::outcome(done)) }
        dl.facts {
            dt { "Row" } dd { "#" (d.row) }
            dt { "Provider" } dd { (d.provider) }
            dt { "Delivery id" } dd { code { (d.delivery_id) } }
            dt { "Received" } dd { (at(&d.received_at)) }
            dt { "Signed at" } dd { (at(&d.signed_at)) }
            dt { "Verified by" } dd { "secret " code { (d.verified_by) } small.none { " (a fingerprint of the secret, never the secret)" } }
            dt { "Processed" } dd { (at_opt(d.processed_at.as_ref())) }
            dt { "Outcome" } dd class={ "outcome-" (d.outcome.as_deref().unwrap_or("unprocessed")) } {
                (d.outcome.as_deref().unwrap_or("unprocessed"))
                @if let Some(detail) = &d.outcome_detail { " — " (detail) }
            }
            dt { "Size" } dd { (d.body.len()) " bytes" }
            @if let Some(scrubbed) = &d.scrubbed_at {
                dt { "Scrubbed" } dd {
                    (at(scrubbed)) " — body and headers dropped (retention or erasure)"
                    @if let Some(hash) = &d.body_sha256 { "; the body's SHA-256 was " code { (hex_of(hash)) } }
                }
            }
        }
        @if parked {
            div.actions {
                h2 { "Parked" }
                p { "The worker gave up on this delivery. Once its cause is fixed, send it to the work queue again; a delivery processed meanwhile is never sent twice." }
                form method="post" action={ "/deliveries/" (d.row) "/redrive" } {
                    (csrf(signed))
                    button type="submit" { "Redrive" }
                }
            }
        }
        h2 { "Processing attempts" }
        @if failed.is_empty() && succeeded.is_none() {
            p.none { "Not processed yet." }
        } @else {
            table {
                thead { tr { th.num { "Attempt" } th { "When" } th { "Result" } th { "Reason" } th { "Next attempt in" } } }
                tbody {
                    @for a in &failed { tr {
                        td.num { (a.attempt) } td { (at(&a.at)) }
                        td class={ "outcome-" (a.outcome) } { (a.outcome) }
                        td { (a.reason) }
                        td { @if let Some(ms) = a.retry_in_ms { (ms / 1000) " s" } }
                    } }
                    @if let Some((when, outcome)) = succeeded { tr {
                        td.num { "final" }
                        td { (at(when)) } td class={ "outcome-" (outcome) } { (outcome) }
                        td { (d.outcome_detail.as_deref().unwrap_or("")) } td {}
                    } }
                }
            }
        }
        h2 { "What it changed" }
        (lineage)
        h2 { "Body" }
        div #body {
            @if revealed {
                p { "Personal data shown; your look is in the audit trail." }
            } @else {
                form.inline method="post" action={ "/deliveries/" (d.row) "/reveal" }
                    hx-post={ "/deliveries/" (d.row) "/reveal" } hx-select="#body" hx-target="#body" hx-swap="outerHTML" {
                    (csrf(signed))
                    span.masked { "Buyers' e-mail addresses, names and addresses are masked. " }
                    button.secondary type="submit" { "Reveal (audited)" }
                }
            }
            pre #payload { (body) }
        }
        h2 { "Headers" }
        table {
            tbody {
                @for (name, value) in &headers {
                    tr {
                        td { code { (name) } }
                        td { code {
                            @if CREDENTIAL_HEADERS.contains(&name.to_ascii_lowercase().as_str()) { span.masked { "(hidden)" } }
                            @else { (value) }
                        } }
                    }
                }
            }
        }
    };
    Ok(layout::page(
        signed,
        Section::Deliveries,
        &format!("Delivery {}", d.delivery_id),
        markup,
    ))
}

/// The body as shown: JSON pretty-printed (exact numbers kept), masked
/// unless revealed; anything else as text, its e-mail addresses masked.
fn shown_body(body: &[u8], revealed: bool) -> String {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(mut value) => {
            if !revealed {
                mask::mask_json(&mut value);
            }
            serde_json::to_string_pretty(&value).unwrap_or_default()
        }
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            if revealed {
                text.into_owned()
            } else {
                mask::mask_text(&text)
            }
        }
    }
}

/// The orders this delivery is about (read from its body as the worker
/// reads it), with the events and ledger entries it caused on each.
async fn lineage(state: &AppState, d: &Whole) -> Result<Markup, Refusal> {
    let Some(provider) = Provider::from_name(&d.provider) else {
        return Ok(html! { p.none { "A provider this console does not know." } });
    };
    let (mut orders, about) = match ledgerhook_providers::parse(provider, &d.body) {
        Ok(PaymentEvent::Order(event)) => {
            let mut found = Vec::new();
            if let Some(order) = inspect::order(&state.pool, &event.order_id).await? {
                found.push(order);
            }
            if found.is_empty()
                && let Some(pi) = &event.payment_intent
                && let Some(order) = inspect::order_of_payment(&state.pool, pi).await?
            {
                found.push(order);
            }
            (
                found,
                format!("{} for order {}", event.event_type, event.order_id),
            )
        }
        Ok(PaymentEvent::Reversal(reversal)) => (
            inspect::order_of_payment(&state.pool, &reversal.payment_intent)
                .await?
                .into_iter()
                .collect(),
            format!(
                "{} of payment {}",
                reversal.event_type, reversal.payment_intent
            ),
        ),
        Ok(PaymentEvent::Subscription(change)) => (
            Vec::new(),
            format!("a subscription's new state ({change:?})")
                .chars()
                .take(300)
                .collect(),
        ),
        Err(e) => (Vec::new(), format!("unreadable as an event: {e}")),
    };
    orders.dedup_by_key(|o| o.id);
    let mut sections = Vec::new();
    for order in &orders {
        let events: Vec<_> = inspect::events(&state.pool, order.id)
            .await?
            .into_iter()
            .filter(|e| e.delivery_row == Some(d.row))
            .collect();
        let entries: Vec<_> = inspect::entries(&state.pool, &order.user_id, order.id)
            .await?
            .into_iter()
            .filter(|e| e.delivery_row == Some(d.row))
            .collect();
        sections.push(html! {
            h3 { "Order " (order_link(&order.provider_order_id)) " — " (order.status)
                @if let Some(reason) = &order.review_reason { " · held: " (reason) } }
            @if events.is_empty() && entries.is_empty() {
                p.none { "No event or ledger entry of this order came from this delivery." }
            }
            @if !events.is_empty() {
                table { thead { tr { th { "When" } th { "Order event" } th { "Data" } } }
                    tbody { @for e in &events { tr { td { (at(&e.at)) } td { (e.event_type) } td { code { (e.data.to_string()) } } } } } }
            }
            @if !entries.is_empty() {
                table { thead { tr { th { "Ledger entry" } th { "When" } th { "Kind" } th.num { "Credits" } } }
                    tbody { @for e in &entries { tr { td { "#" (e.id) } td { (at(&e.at)) } td { (e.kind) } td.num { (e.credits) } } } } }
            }
        });
    }
    Ok(html! {
        p { "The event: " (about) }
        @if orders.is_empty() { p.none { "No recorded order matches it." } }
        @for section in &sections { (section) }
    })
}

/// Lower-case hex, as `sha256sum` prints a digest.
fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
