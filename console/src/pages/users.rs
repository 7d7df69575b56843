//! A user: balance, lots and their expiry, every ledger movement in pages
//! (grants, spends, expiries, refunds, revokes), their orders, the audit
//! rows that name them; and a grant by hand, after a confirmation step.

use axum::extract::{Query, State};
use axum::{Extension, Form};
use base64::Engine as _;
use ledgerhook_store::audit::{self as audit_log, About};
use ledgerhook_store::credits::{credits_view, history};
use ledgerhook_store::user_orders;
use maud::{Markup, html};
use serde::Deserialize;

use super::audit::audit_table;
use super::layout::{self, Section, at, at_opt, csrf, order_link, urlencode};
use super::orders::{AUDIT_ROWS, clean_reason};
use super::search::clean_id;
use crate::app::AppState;
use crate::auth::Signed;
use crate::metrics;
use crate::refusal::Refusal;

const ENTRIES: i64 = 100;
const ORDERS: i64 = 50;
/// Lots further away than this are not "expiring"; a century shows them all.
const ALL_LOTS_DAYS: i32 = 36_500;
/// The most credits one grant by hand may give (as `ledgerhook-admin grant`).
const MAX_GRANT: i64 = 100_000_000;

#[derive(Deserialize)]
pub struct Which {
    #[serde(default)]
    id: String,
    #[serde(default)]
    before: String,
}

pub async fn page(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Query(which): Query<Which>,
) -> Result<Markup, Refusal> {
    if which.id.trim().is_empty() {
        let body = html! {
            form method="get" action="/users" {
                label { "User id " input name="id" required maxlength="200" autofocus; }
                button type="submit" { "Show" }
            }
        };
        return Ok(layout::page(&signed, Section::Users, "Users", body));
    }
    let user = clean_id(&which.id)?;
    let before = match which.before.trim() {
        "" => None,
        text => Some(text.parse::<i64>().ok().filter(|b| *b > 0).ok_or_else(|| {
            Refusal::bad_input("INVALID_FILTER", "before: not a ledger entry number")
        })?),
    };
    let view = credits_view(&state.pool, user, ALL_LOTS_DAYS).await?;
    let entries = history::ledger_page(&state.pool, user, before, ENTRIES + 1).await?;
    let more = entries.len() > usize::try_from(ENTRIES).unwrap_or(usize::MAX);
    let entries = &entries[..entries
        .len()
        .min(usize::try_from(ENTRIES).unwrap_or(usize::MAX))];
    let orders = user_orders::page(&state.pool, user, ORDERS, 0).await?;
    let audit = audit_log::page(&state.pool, About::User(user), None, AUDIT_ROWS).await?;
    let body = html! {
        div.tiles {
            div.tile { div.value { (view.balance) } div.label { "credits spendable now" } }
            div.tile { div.value { (view.expiring.len()) } div.label { "lots still to expire" } }
            div.tile { div.value { (orders.len()) } div.label { "orders (newest " (ORDERS) ")" } }
        }
        h2 { "Lots and their expiry" }
        @if view.expiring.is_empty() { p.none { "No credits with an expiry." } }
        @else {
            table { thead { tr { th.num { "Credits left" } th { "Expire at" } } }
                tbody { @for lot in &view.expiring { tr { td.num { (lot.credits) } td { (at(&lot.expires_at)) } } } } }
        }
        h2 { "Ledger" }
        @if entries.is_empty() { p.none { "No ledger entry." } }
        @else {
            table {
                thead { tr { th { "Entry" } th { "When" } th { "Kind" } th.num { "Credits" } th.num { "Balance after" } th { "Order" } th { "Expires" } th { "Spent on" } } }
                tbody { @for e in entries { tr {
                    td { "#" (e.id) } td { (at(&e.at)) } td { (e.kind) } td.num { (e.credits) } td.num { (e.balance_after) }
                    td { @if let Some(order) = &e.order { (order_link(order)) } }
                    td { (at_opt(e.expires_at.as_ref())) }
                    td { (e.spend_description.as_deref().unwrap_or("")) }
                } } }
            }
            @if more {
                @if let Some(last) = entries.last() {
                    p { a rel="next" href={ "/users?id=" (urlencode(user)) "&before=" (last.id) } { "Older →" } }
                }
            }
        }
        h2 { "Orders" }
        @if orders.is_empty() { p.none { "No order." } }
        @else {
            table {
                thead { tr { th { "Order" } th { "Provider" } th { "Package" } th { "Price" } th { "Status" } th.num { "Credits" } th { "Created" } } }
                tbody { @for o in &orders { tr {
                    td { (order_link(&o.provider_order_id)) } td { (o.provider) } td { (o.package_id) }
                    td { (o.amount) " " (o.currency) } td { (o.status) @if o.review_reason.is_some() { " (held)" } }
                    td.num { (o.total_credits) } td { (at(&o.created_at)) }
                } } }
            }
        }
        div.actions {
            h2 { "Grant by hand" }
            form method="post" action="/users/grant" {
                (csrf(&signed))
                input type="hidden" name="user" value=(user);
                label { "Credits " input name="credits" type="number" min="1" max=(MAX_GRANT) required; }
                label { "Reason " input name="reason" required maxlength="500" size="60"; }
                button type="submit" { "Grant…" }
            }
        }
        h2 { "Audit" }
        (audit_table(&audit))
    };
    Ok(layout::page(
        &signed,
        Section::Users,
        &format!("User {user}"),
        body,
    ))
}

#[derive(Deserialize)]
pub struct Grant {
    #[serde(default)]
    user: String,
    #[serde(default)]
    credits: String,
    #[serde(default)]
    reason: String,
    /// Set by the confirmation page: the same key never grants twice, so a
    /// confirmation sent twice grants once.
    #[serde(default)]
    key: String,
}

pub async fn grant(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Form(form): Form<Grant>,
) -> Result<Markup, Refusal> {
    let operator = signed.may_act()?.to_owned();
    let user = clean_id(&form.user)?;
    let reason = clean_reason(&form.reason)?;
    let credits = form
        .credits
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|c| (1..=MAX_GRANT).contains(c))
        .ok_or_else(|| {
            Refusal::bad_input(
                "INVALID_CREDITS",
                format!("credits: a whole number from 1 to {MAX_GRANT}"),
            )
        })?;
    if form.key.is_empty() {
        let key = format!(
            "console-grant:{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(ledgerhook_admin::password::random_bytes::<12>())
        );
        let body = html! {
            p { "Grant " strong { (credits) " credits" } " to " code { (user) } "?" }
            p { "Reason: " em { (reason) } }
            form method="post" action="/users/grant" {
                (csrf(&signed))
                input type="hidden" name="user" value=(user);
                input type="hidden" name="credits" value=(credits);
                input type="hidden" name="reason" value=(reason);
                input type="hidden" name="key" value=(key);
                button type="submit" { "Yes, grant" }
                " " a href={ "/users?id=" (urlencode(user)) } { "Cancel" }
            }
        };
        return Ok(layout::page(
            &signed,
            Section::Users,
            "Confirm the grant",
            body,
        ));
    }
    if !form.key.starts_with("console-grant:") || form.key.len() > 64 {
        return Err(Refusal::bad_input(
            "INVALID_KEY",
            "this confirmation is not the console's",
        ));
    }
    let printout = ledgerhook_admin::credits::grant(
        &state.pool,
        ledgerhook_store::credits::ManualGrant {
            user_id: user,
            credits,
            reason,
            idempotency_key: &form.key,
            order: None,
            actor: &operator,
            email: None,
        },
    )
    .await?;
    metrics::action("grant", printout.refused.is_none());
    let body = html! {
        (layout::outcome(&printout))
        p { a href={ "/users?id=" (urlencode(user)) } { "Back to the user" } }
    };
    Ok(layout::page(&signed, Section::Users, "Grant", body))
}
