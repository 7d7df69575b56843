//! Refused requests: the last ones per reason, as the ingester kept them
//! (time, provider, status, headers, the body's size; never the body). "The
//! provider says we answer 401" is answered here: which reason, since when,
//! what the request carried.

use axum::Extension;
use axum::extract::{Query, State};
use ledgerhook_store::rejected;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{self, Section, at};
use crate::app::AppState;
use crate::auth::Signed;
use crate::refusal::Refusal;

const LISTED: i64 = 100;

#[derive(Deserialize)]
pub struct Asked {
    #[serde(default)]
    reason: String,
}

pub async fn list(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Query(asked): Query<Asked>,
) -> Result<Markup, Refusal> {
    let reason = match asked.reason.trim() {
        "" => None,
        code if code.len() <= 64 && code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') => {
            Some(code)
        }
        _ => {
            return Err(Refusal::bad_input(
                "INVALID_FILTER",
                "reason: a refusal code such as SIGNATURE_VERIFICATION_FAILED",
            ));
        }
    };
    let reasons = rejected::reasons(&state.pool).await?;
    let rows = rejected::newest(&state.pool, reason, LISTED).await?;
    let body = html! {
        p.none { "The ingester keeps the last refused requests of each reason (REJECTED_REQUESTS_KEPT), at most REJECTED_REQUESTS_PER_SECOND a second; bodies are never kept." }
        @if reasons.is_empty() { p.none { "No request has been refused." } }
        @else {
            table {
                thead { tr { th { "Reason" } th.num { "Noted in all" } th { "Newest" } } }
                tbody { @for r in &reasons { tr {
                    td { a href={ "/rejected?reason=" (r.reason) } { code { (r.reason) } } }
                    td.num { (r.noted) }
                    td { @if let Some(newest) = &r.newest { (at(newest)) } }
                } } }
            }
        }
        @if let Some(reason) = reason { h2 { "Newest " code { (reason) } " " a href="/rejected" { "(all reasons)" } } }
        @else { h2 { "Newest of every reason" } }
        @if rows.is_empty() { p.none { "None kept." } }
        @else {
            table {
                thead { tr { th { "When" } th { "Provider" } th { "Status" } th { "Reason" } th.num { "Body bytes" } th { "Headers" } } }
                tbody { @for r in &rows { tr {
                    td { (at(&r.at)) }
                    td { (r.provider) }
                    td { (r.status) }
                    td { code { (r.reason) } }
                    td.num { @if let Some(bytes) = r.body_bytes { (bytes) } }
                    td { details {
                        summary { (r.headers.as_array().map_or(0, Vec::len)) " headers" }
                        table { tbody {
                            @for pair in r.headers.as_array().into_iter().flatten() { tr {
                                td { code { (pair.get(0).and_then(|v| v.as_str()).unwrap_or("")) } }
                                td { code { (pair.get(1).and_then(|v| v.as_str()).unwrap_or("")) } }
                            } }
                        } }
                    } }
                } } }
            }
        }
    };
    Ok(layout::page(
        &signed,
        Section::Rejected,
        "Rejected requests",
        body,
    ))
}
