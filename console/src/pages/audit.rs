//! The audit trail: every operator action, from the console and from
//! `ledgerhook-admin` alike (who, what, when, why, what changed), newest
//! first, in pages.

use axum::Extension;
use axum::extract::{Query, State};
use ledgerhook_store::audit::{self as audit_log, About, Row};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{self, Section, at};
use crate::app::AppState;
use crate::auth::Signed;
use crate::refusal::Refusal;

const PAGE: i64 = 100;

#[derive(Deserialize)]
pub struct Page {
    #[serde(default)]
    before: String,
}

pub async fn list(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Query(page): Query<Page>,
) -> Result<Markup, Refusal> {
    let before = match page.before.trim() {
        "" => None,
        text => Some(text.parse::<i64>().ok().filter(|b| *b > 0).ok_or_else(|| {
            Refusal::bad_input("INVALID_FILTER", "before: not an audit row number")
        })?),
    };
    let rows = audit_log::page(&state.pool, About::All, before, PAGE + 1).await?;
    let more = rows.len() > usize::try_from(PAGE).unwrap_or(usize::MAX);
    let rows = &rows[..rows.len().min(usize::try_from(PAGE).unwrap_or(usize::MAX))];
    let body = html! {
        (audit_table(rows))
        @if more {
            @if let Some(last) = rows.last() {
                p { a rel="next" href={ "/audit?before=" (last.id) } { "Older →" } }
            }
        }
    };
    Ok(layout::page(&signed, Section::Audit, "Audit trail", body))
}

/// Audit rows as a table (the audit page, an order's, a user's).
pub fn audit_table(rows: &[Row]) -> Markup {
    html! {
        @if rows.is_empty() { p.none { "No audit row." } }
        @else {
            table.audit {
                thead { tr { th { "#" } th { "When" } th { "Who" } th { "Action" } th { "Why" } th { "Arguments" } th { "Result" } } }
                tbody { @for r in rows { tr {
                    td { (r.id) }
                    td { (at(&r.at)) }
                    td { (r.operator.as_deref().unwrap_or("—")) }
                    td { (r.command) }
                    td { (r.reason.as_deref().unwrap_or("")) }
                    td { code { (r.arguments.to_string()) } }
                    td { code { (r.result.to_string().chars().take(300).collect::<String>()) } }
                } } }
            }
        }
    }
}
