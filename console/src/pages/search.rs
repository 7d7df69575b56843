//! One search box for every id an operator is handed: a sender's delivery
//! id (`svix-id`, Stripe's `evt_...`), an order id (Crossmint's, Stripe's
//! `cs_...` or `in_...`), a PaymentIntent (`pi_...`) or a user id. Each is
//! an exact match on an index; the first that matches is shown.

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use ledgerhook_domain::Provider;
use ledgerhook_store::deliveries::browse;
use ledgerhook_store::ledger::inspect;
use maud::html;
use serde::Deserialize;

use super::layout::{self, Section, urlencode};
use crate::app::AppState;
use crate::auth::Signed;
use crate::refusal::Refusal;

/// The longest id searched for: every id we know is far shorter.
pub const MAX_ID_LENGTH: usize = 200;

#[derive(Deserialize)]
pub struct Find {
    #[serde(default)]
    q: String,
}

/// A search term, trimmed and checked: not empty, not longer than any id,
/// no control characters.
pub fn clean_id(raw: &str) -> Result<&str, Refusal> {
    let id = raw.trim();
    if id.is_empty() {
        return Err(Refusal::bad_input("EMPTY_SEARCH", "type an id to find"));
    }
    if id.len() > MAX_ID_LENGTH || id.chars().any(char::is_control) {
        return Err(Refusal::bad_input(
            "INVALID_ID",
            format!("an id is at most {MAX_ID_LENGTH} characters, without control characters"),
        ));
    }
    Ok(id)
}

pub async fn find(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Query(find): Query<Find>,
) -> Result<Response, Refusal> {
    let id = clean_id(&find.q)?;
    let providers: Vec<&str> = Provider::ALL.iter().map(|p| p.as_str()).collect();
    let rows = browse::rows_with_delivery_id(&state.pool, &providers, id).await?;
    if let [row] = rows.as_slice() {
        return Ok(Redirect::to(&format!("/deliveries/{row}")).into_response());
    }
    if inspect::order(&state.pool, id).await?.is_some() {
        return Ok(Redirect::to(&format!("/orders?id={}", urlencode(id))).into_response());
    }
    if let Some(order) = inspect::order_of_payment(&state.pool, id).await? {
        return Ok(Redirect::to(&format!(
            "/orders?id={}",
            urlencode(&order.provider_order_id)
        ))
        .into_response());
    }
    if inspect::user_exists(&state.pool, id).await? {
        return Ok(Redirect::to(&format!("/users?id={}", urlencode(id))).into_response());
    }
    let body = html! {
        @if rows.is_empty() {
            p { "Nothing is recorded under " code { (id) } ": no delivery id, order, PaymentIntent or user." }
        } @else {
            p { "Several deliveries carry this id (one per provider):" }
            ul { @for row in &rows { li { a href={ "/deliveries/" (row) } { "delivery #" (row) } } } }
        }
    };
    Ok(layout::page(&signed, Section::Deliveries, "Find", body).into_response())
}
