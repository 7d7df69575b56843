//! An order as its provider sees it, asked on demand (a held order's
//! "what does Crossmint say?"): Crossmint's order, or Stripe's Checkout
//! Session, pretty-printed with the buyer's personal data masked. Needs the
//! provider's API key in the console's configuration; without it the page
//! says so.

use axum::Extension;
use axum::extract::{Query, State};
use ledgerhook_store::ledger::inspect;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{self, Section, order_link};
use super::search::clean_id;
use crate::app::AppState;
use crate::auth::Signed;
use crate::mask;
use crate::refusal::Refusal;

#[derive(Deserialize)]
pub struct Which {
    #[serde(default)]
    order: String,
}

/// What the provider answered, in words and (when it has one) its order.
enum Answer {
    Found(Vec<u8>),
    Missing(String),
    Failed(String),
    NotConfigured(&'static str),
}

pub async fn page(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Query(which): Query<Which>,
) -> Result<Markup, Refusal> {
    let id = clean_id(&which.order)?;
    let order = inspect::order(&state.pool, id)
        .await?
        .ok_or_else(|| Refusal::not_found(format!("no order {id} is recorded")))?;
    let answer = match order.provider.as_str() {
        "crossmint" => match &state.crossmint {
            None => Answer::NotConfigured("CROSSMINT_SERVER_API_KEY"),
            Some(api) => match api.get_order(id).await {
                Ok(found) => Answer::Found(found.body.to_vec()),
                Err(ledgerhook_providers::crossmint::CrossmintError::Refused { status: 404 }) => {
                    Answer::Missing(format!("Crossmint has no order {id}"))
                }
                Err(e) => Answer::Failed(e.to_string()),
            },
        },
        "stripe" => match &state.stripe {
            None => Answer::NotConfigured("STRIPE_SECRET_KEY"),
            Some(reads) if id.starts_with("cs_") => match reads.checkout_session(id).await {
                Ok(Some(body)) => Answer::Found(body),
                Ok(None) => Answer::Missing(format!("Stripe has no Checkout Session {id}")),
                Err(e) => Answer::Failed(e.to_string()),
            },
            Some(_) => Answer::Missing(format!(
                "{id} is not a Checkout Session; look it up in Stripe's dashboard"
            )),
        },
        other => Answer::Missing(format!("no provider view for {other}")),
    };
    let body = html! {
        p { "Order " (order_link(id)) " at " (order.provider) ", as the provider answers now (personal data masked):" }
        @match &answer {
            Answer::Found(body) => pre #provider-answer { (shown(body)) },
            Answer::Missing(text) => p.refusal { (text) },
            Answer::Failed(text) => p.refusal { "The provider could not be asked: " (text) },
            Answer::NotConfigured(variable) => p.none { "Not configured: set " code { (variable) } " for the console to ask." },
        }
        p { a href="/held" { "Back to held orders" } }
    };
    Ok(layout::page(
        &signed,
        Section::Held,
        &format!("{} says", order.provider),
        body,
    ))
}

fn shown(body: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(mut value) => {
            mask::mask_json(&mut value);
            serde_json::to_string_pretty(&value).unwrap_or_default()
        }
        Err(_) => mask::mask_text(&String::from_utf8_lossy(body)),
    }
}
