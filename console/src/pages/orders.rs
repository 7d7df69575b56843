//! One order: its row, every event that touched it with the delivery it
//! came from, the ledger entries it caused, and the audit rows that name
//! it. An operator can revoke its grant here, after a confirmation step.

use axum::extract::{Query, State};
use axum::{Extension, Form};
use ledgerhook_store::audit::{self as audit_log, About};
use ledgerhook_store::ledger::inspect;
use maud::{Markup, html};
use serde::Deserialize;

use super::audit::audit_table;
use super::layout::{self, Section, at, at_opt, csrf, user_link};
use super::search::clean_id;
use crate::app::AppState;
use crate::auth::Signed;
use crate::metrics;
use crate::refusal::Refusal;

/// Audit rows shown on an order's or a user's page.
pub const AUDIT_ROWS: i64 = 50;

#[derive(Deserialize)]
pub struct Which {
    #[serde(default)]
    id: String,
}

pub async fn page(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Query(which): Query<Which>,
) -> Result<Markup, Refusal> {
    let id = clean_id(&which.id)?;
    let order = inspect::order(&state.pool, id)
        .await?
        .ok_or_else(|| Refusal::not_found(format!("no order {id} is recorded")))?;
    let events = inspect::events(&state.pool, order.id).await?;
    let entries = inspect::entries(&state.pool, &order.user_id, order.id).await?;
    let audit = audit_log::page(&state.pool, About::Order(id), None, AUDIT_ROWS).await?;
    let granted = entries
        .iter()
        .any(|e| e.kind == "purchase_grant" || e.kind == "manual_grant");
    let body = html! {
        dl.facts {
            dt { "Provider" } dd { (order.provider) }
            dt { "Order id" } dd { code { (order.provider_order_id) } }
            @if let Some(pi) = &order.payment_intent { dt { "PaymentIntent" } dd { code { (pi) } } }
            @if let Some(sub) = &order.subscription_id { dt { "Subscription" } dd { code { (sub) } } }
            dt { "User" } dd { (user_link(&order.user_id)) }
            dt { "Package" } dd { (order.package_id) }
            dt { "Price" } dd { (order.amount) " " (order.currency) }
            dt { "Credits" } dd { (order.total_credits) }
            dt { "Status" } dd { (order.status) }
            @if let Some(reason) = &order.review_reason { dt { "Held for review" } dd.refusal { (reason) " " a href="/held" { "(review)" } } }
            dt { "Created" } dd { (at(&order.created_at)) " from " (order.created_from) }
            dt { "Paid" } dd { (at_opt(order.paid_at.as_ref())) }
            dt { "Completed" } dd { (at_opt(order.completed_at.as_ref())) }
            @if order.revoked_at.is_some() {
                dt { "Revoked" } dd { (at_opt(order.revoked_at.as_ref())) ": " (order.revoked_credits.unwrap_or(0)) " credits taken back, " (order.revoke_shortfall.unwrap_or(0)) " short" }
            }
        }
        h2 { "Events" }
        table {
            thead { tr { th { "When" } th { "Event" } th { "Delivery" } th { "Data" } } }
            tbody { @for e in &events { tr {
                td { (at(&e.at)) }
                td { (e.event_type) }
                td { @if let (Some(row), Some(id)) = (e.delivery_row, &e.delivery_id) { a href={ "/deliveries/" (row) } { code { (id) } } } }
                td { code { (e.data.to_string()) } }
            } } }
        }
        h2 { "Ledger entries" }
        @if entries.is_empty() { p.none { "None: this order has moved no credits." } }
        @else {
            table {
                thead { tr { th { "Entry" } th { "When" } th { "Kind" } th.num { "Credits" } th { "Delivery" } th { "Description" } } }
                tbody { @for e in &entries { tr {
                    td { "#" (e.id) } td { (at(&e.at)) } td { (e.kind) } td.num { (e.credits) }
                    td { @if let Some(row) = e.delivery_row { a href={ "/deliveries/" (row) } { "#" (row) } } }
                    td { (e.description.as_deref().unwrap_or("")) }
                } } }
            }
        }
        @if granted && order.revoked_at.is_none() {
            div.actions {
                h2 { "Revoke" }
                p { "Take back this order's grant with a compensating entry (what was spent already is recorded as a shortfall)." }
                form method="post" action="/orders/revoke" {
                    (csrf(&signed))
                    input type="hidden" name="order" value=(order.provider_order_id);
                    label { "Reason " input name="reason" required maxlength="500" size="60"; }
                    button.danger type="submit" { "Revoke…" }
                }
            }
        }
        h2 { "Audit" }
        (audit_table(&audit))
    };
    Ok(layout::page(
        &signed,
        Section::Deliveries,
        &format!("Order {}", order.provider_order_id),
        body,
    ))
}

#[derive(Deserialize)]
pub struct Revoke {
    #[serde(default)]
    order: String,
    #[serde(default)]
    reason: String,
    /// Absent: show what would happen and ask; `yes`: do it.
    #[serde(default)]
    confirm: String,
}

/// A reason as forms send it: required, bounded, one line of text.
pub fn clean_reason(raw: &str) -> Result<&str, Refusal> {
    let reason = raw.trim();
    if reason.is_empty() {
        return Err(Refusal::bad_input(
            "REASON_REQUIRED",
            "say why: the reason goes to the audit trail",
        ));
    }
    if reason.chars().count() > 500 || reason.chars().any(char::is_control) {
        return Err(Refusal::bad_input(
            "INVALID_REASON",
            "a reason is one line of at most 500 characters",
        ));
    }
    Ok(reason)
}

pub async fn revoke(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Form(form): Form<Revoke>,
) -> Result<Markup, Refusal> {
    let operator = signed.may_act()?.to_owned();
    let order = clean_id(&form.order)?;
    let reason = clean_reason(&form.reason)?;
    if form.confirm != "yes" {
        let body = html! {
            p { "Revoke the grant of order " code { (order) } "? Its owner's balance goes down by the credits still unspent; the rest is recorded as a shortfall." }
            p { "Reason: " em { (reason) } }
            form method="post" action="/orders/revoke" {
                (csrf(&signed))
                input type="hidden" name="order" value=(order);
                input type="hidden" name="reason" value=(reason);
                input type="hidden" name="confirm" value="yes";
                button.danger type="submit" { "Yes, revoke" }
                " " a href={ "/orders?id=" (layout::urlencode(order)) } { "Cancel" }
            }
        };
        return Ok(layout::page(
            &signed,
            Section::Deliveries,
            "Confirm the revoke",
            body,
        ));
    }
    let printout =
        ledgerhook_admin::credits::revoke(&state.pool, Some(&operator), order, reason).await?;
    metrics::action("revoke", printout.refused.is_none());
    let body = html! {
        (layout::outcome(&printout))
        p { a href={ "/orders?id=" (layout::urlencode(order)) } { "Back to the order" } }
    };
    Ok(layout::page(&signed, Section::Deliveries, "Revoke", body))
}
