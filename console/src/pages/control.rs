//! The pause switch (runbook 5.2): stop every worker taking messages, and
//! let them again, with a reason. The same function as
//! `ledgerhook-admin pause|resume`, without waiting for the workers to leave.

use axum::extract::State;
use axum::{Extension, Form};
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
                ", since " (at(&switch.since)) " by " (by) ": " (switch.reason.as_deref().unwrap_or(""))
            }
        }
        p.none { "While paused, the ingester keeps recording and answering 200; deliveries wait in the work queue. Workers stop taking messages within seconds." }
        form method="post" action="/control" {
            (csrf(signed))
            label { "Reason " input name="reason" required maxlength="500" size="60"; }
            @if switch.paused {
                button type="submit" name="paused" value="false" { "Resume processing" }
            } @else {
                button.danger type="submit" name="paused" value="true" { "Pause processing" }
            }
        }
    };
    Ok(layout::page(
        signed,
        Section::Control,
        "Pause and resume",
        body,
    ))
}

#[derive(Deserialize)]
pub struct Switch {
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
    let printout =
        ledgerhook_admin::control::switch(&state.pool, Some(&operator), paused, reason).await?;
    metrics::action(if paused { "pause" } else { "resume" }, true);
    render(&state, &signed, Some(&printout)).await
}
