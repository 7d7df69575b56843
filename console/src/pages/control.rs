//! The pause switch (runbook 5.2): stop every worker taking messages, and
//! let them again, with a reason. The same function as
//! `ledgerhook-admin pause|resume`, without waiting for the workers to leave.

use axum::extract::State;
use axum::{Extension, Form};
use ledgerhook_domain::PaymentProvider;
use ledgerhook_store::control;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{self, Section, at, csrf};
use super::orders::clean_reason;
use crate::app::AppState;
use crate::auth::Signed;
use crate::metrics;
use crate::refusal::Refusal;

pub async fn page(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
) -> Result<Markup, Refusal> {
    render(&state, &signed, None).await
}

async fn render(
    state: &AppState,
    signed: &Signed,
    done: Option<&ledgerhook_admin::Printout>,
) -> Result<Markup, Refusal> {
    let switch = control::read(&state.pool).await?;
    let body = html! {
        @if let Some(done) = done { (layout::outcome(done)) }
        p {
            "Processing is " strong { @if switch.paused { "PAUSED" } @else { "running" } }
            @if let Some(by) = &switch.changed_by {
                "; last changed " (at(&switch.since)) " by " (by) ": " (switch.reason.as_deref().unwrap_or(""))
            }
        }
        p.none { "While paused, the ingester keeps recording and answering 200; deliveries wait in the work queue. Workers stop taking messages within seconds." }
        form method="post" action="/control" {
            (csrf(signed))
            input type="hidden" name="scope" value="all";
            label { "Reason " input name="reason" required maxlength="500" size="60"; }
            @if switch.paused {
                button type="submit" name="paused" value="false" { "Resume processing" }
            } @else {
                button.danger type="submit" name="paused" value="true" { "Pause processing" }
            }
        }
        h2 { "One provider" }
        p.none { "A provider paused on its own: its deliveries are recorded and set aside unprocessed (looked at again every "
            (ledgerhook_worker::settler::DEFER_DELAY.as_secs()) " s) while the other's are processed. Unpaid orders do not expire meanwhile." }
        table {
            thead { tr { th { "Provider" } th { "State" } th { "Change" } } }
            tbody { @for provider in PROVIDERS {
                @let held = switch.paused_providers.iter().any(|p| p == provider.as_str());
                tr {
                    td { (provider.as_str()) }
                    td { @if held { strong.refusal { "PAUSED" } } @else { "running" } }
                    td { form method="post" action="/control" {
                        (csrf(signed))
                        input type="hidden" name="scope" value=(provider.as_str());
                        input name="reason" required maxlength="500" size="40" placeholder="reason" aria-label={ "Reason for " (provider.as_str()) };
                        " "
                        @if held {
                            button type="submit" name="paused" value="false" { "Resume " (provider.as_str()) }
                        } @else {
                            button.danger type="submit" name="paused" value="true" { "Pause " (provider.as_str()) }
                        }
                    } }
                }
            } }
        }
    };
    Ok(layout::page(
        signed,
        Section::Control,
        "Pause and resume",
        body,
    ))
}

const PROVIDERS: [PaymentProvider; 2] = [PaymentProvider::Crossmint, PaymentProvider::Stripe];

#[derive(Deserialize)]
pub struct Switch {
    /// `all`, or a provider's name.
    #[serde(default)]
    scope: String,
    #[serde(default)]
    paused: String,
    #[serde(default)]
    reason: String,
}

pub async fn switch(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Form(form): Form<Switch>,
) -> Result<Markup, Refusal> {
    let operator = signed.may_act()?.to_owned();
    let reason = clean_reason(&form.reason)?;
    let paused = match form.paused.as_str() {
        "true" => true,
        "false" => false,
        _ => {
            return Err(Refusal::bad_input(
                "INVALID_SWITCH",
                "paused is true or false",
            ));
        }
    };
    let provider = match form.scope.as_str() {
        "" | "all" => None,
        name => Some(
            PROVIDERS
                .into_iter()
                .find(|p| p.as_str() == name)
                .ok_or_else(|| {
                    Refusal::bad_input("INVALID_SWITCH", "scope is all, crossmint or stripe")
                })?,
        ),
    };
    let printout = ledgerhook_admin::control::switch_for(
        &state.pool,
        Some(&operator),
        provider,
        paused,
        reason,
    )
    .await?;
    metrics::action(if paused { "pause" } else { "resume" }, true);
    render(&state, &signed, Some(&printout)).await
}
