//! Orders held for review (a payment that contradicts its order): the
//! reason, the deliveries behind it, and release (grant once) or reject
//! (grant nothing), each with a reason: the same functions as
//! `ledgerhook-admin release|reject`.

use axum::extract::State;
use axum::{Extension, Form};
use ledgerhook_admin::review::Verdict;
use ledgerhook_store::ledger::{inspect, review};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{self, Section, at_opt, csrf, order_link, user_link};
use super::orders::clean_reason;
use super::search::clean_id;
use crate::app::AppState;
use crate::auth::Signed;
use crate::metrics;
use crate::refusal::Refusal;

const LISTED: i64 = 100;

pub async fn list(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
) -> Result<Markup, Refusal> {
    let held = review::held(&state.pool, LISTED).await?;
    let mut rows = Vec::with_capacity(held.len());
    for order in &held {
        // The deliveries behind the hold: the order's events that came from one.
        let deliveries: Vec<(i64, String)> =
            match inspect::order(&state.pool, &order.provider_order_id).await? {
                Some(o) => inspect::events(&state.pool, o.id)
                    .await?
                    .into_iter()
                    .filter_map(|e| Some((e.delivery_row?, e.delivery_id?)))
                    .collect(),
                None => Vec::new(),
            };
        rows.push((order, deliveries));
    }
    let body = html! {
        @if held.is_empty() { p.none { "No order is held for review." } }
        @for (o, deliveries) in &rows {
            section.tile.warn {
                h2 { (order_link(&o.provider_order_id)) " · " (o.provider) }
                dl.facts {
                    dt { "Held since" } dd { (at_opt(o.held_at.as_ref())) }
                    dt { "Reason" } dd.refusal { (o.review_reason) }
                    dt { "User" } dd { (user_link(&o.user_id)) }
                    dt { "Package" } dd { (o.package_id) ", " (o.total_credits) " credits" }
                    dt { "Status" } dd { (o.status) }
                    dt { "The provider's view" } dd { a href={ "/held/provider?order=" (layout::urlencode(&o.provider_order_id)) } { "Ask " (o.provider) } }
                    dt { "Deliveries" } dd {
                        @for (row, id) in deliveries { a href={ "/deliveries/" (row) } { code { (id) } } " " }
                    }
                }
                form.actions method="post" action="/held/resolve" {
                    (csrf(&signed))
                    input type="hidden" name="order" value=(o.provider_order_id);
                    label { "Reason " input name="reason" required maxlength="500" size="50"; }
                    button type="submit" name="verdict" value="release" { "Release (grant " (o.total_credits) ")" }
                    " "
                    button.danger type="submit" name="verdict" value="reject" { "Reject" }
                }
            }
        }
    };
    Ok(layout::page(
        &signed,
        Section::Held,
        "Orders held for review",
        body,
    ))
}

#[derive(Deserialize)]
pub struct Resolve {
    #[serde(default)]
    order: String,
    #[serde(default)]
    verdict: String,
    #[serde(default)]
    reason: String,
}

pub async fn resolve(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Form(form): Form<Resolve>,
) -> Result<Markup, Refusal> {
    let operator = signed.may_act()?.to_owned();
    let order = clean_id(&form.order)?;
    let reason = clean_reason(&form.reason)?;
    let (verdict, action) = match form.verdict.as_str() {
        "release" => (Verdict::Release, "release"),
        "reject" => (Verdict::Reject, "reject"),
        _ => return Err(Refusal::bad_input("INVALID_VERDICT", "release or reject")),
    };
    let printout =
        ledgerhook_admin::review::resolve(&state.pool, verdict, Some(&operator), order, reason)
            .await?;
    metrics::action(action, printout.refused.is_none());
    let body = html! {
        (layout::outcome(&printout))
        p { (order_link(order)) " · " a href="/held" { "Back to held orders" } }
    };
    Ok(layout::page(&signed, Section::Held, "Review", body))
}
