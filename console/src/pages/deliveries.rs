//! Deliveries, newest first, in cursor pages, filtered by provider,
//! outcome, event type and time range. Every filter value is checked before
//! it reaches the database; a page is at most [`PAGE`] rows, and the
//! console's statement timeout bounds a filter that matches little.

use axum::Extension;
use axum::extract::{Query, State};
use chrono::{DateTime, NaiveDateTime, Utc};
use ledgerhook_domain::Provider;
use ledgerhook_store::deliveries::browse::{self, Filter};
use maud::{Markup, html};
use serde::{Deserialize, Serialize};

use super::layout::{self, Section, at};
use crate::app::AppState;
use crate::auth::Signed;
use crate::refusal::Refusal;

const PAGE: i64 = 50;
/// The outcomes a delivery can have, and `unprocessed`.
pub const OUTCOMES: &[&str] = &[
    "granted",
    "duplicate",
    "conflict",
    "recorded",
    "ignored",
    "parked",
    "unprocessed",
];
const MAX_TYPE_LENGTH: usize = 100;

/// The filters as the form sends them (empty means any); kept as a replay
/// job's filter too.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Asked {
    #[serde(default)]
    provider: String,
    #[serde(default)]
    outcome: String,
    #[serde(default, rename = "type")]
    event_type: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default, skip_serializing)]
    before: String,
}

fn invalid(message: String) -> Refusal {
    Refusal::bad_input("INVALID_FILTER", message)
}

/// A time as the form's `datetime-local` sends it (taken as UTC), or RFC 3339.
fn parse_time(field: &str, text: &str) -> Result<Option<DateTime<Utc>>, Refusal> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(Some(at.with_timezone(&Utc)));
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(Some(naive.and_utc()));
        }
    }
    Err(invalid(format!(
        "{field}: {} is not a time (YYYY-MM-DDTHH:MM in UTC, or RFC 3339)",
        shorten(text)
    )))
}

/// At most 40 characters of a rejected value, for its message.
fn shorten(text: &str) -> String {
    let short: String = text.chars().take(40).collect();
    if short.len() < text.len() {
        format!("{short:?}…")
    } else {
        format!("{short:?}")
    }
}

impl Asked {
    /// The filter a parked-only replay uses.
    pub fn parked() -> Self {
        Self {
            outcome: "parked".into(),
            ..Self::default()
        }
    }

    /// The filter's fields as hidden inputs (a replay job's form).
    pub fn hidden(&self) -> Markup {
        html! {
            input type="hidden" name="provider" value=(self.provider);
            input type="hidden" name="outcome" value=(self.outcome);
            input type="hidden" name="type" value=(self.event_type);
            input type="hidden" name="from" value=(self.from);
            input type="hidden" name="to" value=(self.to);
        }
    }

    pub fn filter(&self) -> Result<Filter, Refusal> {
        let pick = |text: &str| (!text.trim().is_empty()).then(|| text.trim().to_owned());
        let provider = pick(&self.provider);
        if let Some(p) = &provider
            && Provider::from_name(p).is_none()
        {
            return Err(invalid(format!(
                "provider: {} is not one of crossmint, reconcile, stripe",
                shorten(p)
            )));
        }
        let outcome = pick(&self.outcome);
        if let Some(o) = &outcome
            && !OUTCOMES.contains(&o.as_str())
        {
            return Err(invalid(format!(
                "outcome: {} is not one of {}",
                shorten(o),
                OUTCOMES.join(", ")
            )));
        }
        let event_type = pick(&self.event_type);
        if let Some(t) = &event_type
            && (t.len() > MAX_TYPE_LENGTH
                || !t
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')))
        {
            return Err(invalid(format!(
                "event type: {} is not an event name (letters, digits, . _ -; at most {MAX_TYPE_LENGTH})",
                shorten(t)
            )));
        }
        let from = parse_time("from", &self.from)?;
        let to = parse_time("to", &self.to)?;
        if let (Some(from), Some(to)) = (from, to)
            && from >= to
        {
            return Err(invalid("from must be before to".into()));
        }
        let before = match pick(&self.before) {
            None => None,
            Some(text) => Some(text.parse::<i64>().ok().filter(|b| *b > 0).ok_or_else(|| {
                invalid(format!("before: {} is not a row number", shorten(&text)))
            })?),
        };
        Ok(Filter {
            provider,
            outcome,
            event_type,
            from,
            to,
            before,
        })
    }

    /// This query string with another cursor.
    fn with_before(&self, before: i64) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("provider", &self.provider),
            ("outcome", &self.outcome),
            ("type", &self.event_type),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !value.is_empty() {
                query.append_pair(name, value);
            }
        }
        query.append_pair("before", &before.to_string());
        query.finish()
    }
}

/// The event type a body names in its first bytes (`"type": "..."`).
pub fn event_type_of(head: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(head);
    let after = text.split_once("\"type\"")?.1.trim_start();
    let after = after.strip_prefix(':')?.trim_start().strip_prefix('"')?;
    let name = after.split_once('"')?.0;
    (name.len() <= MAX_TYPE_LENGTH).then(|| name.to_owned())
}

pub async fn list(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Query(asked): Query<Asked>,
) -> Result<Markup, Refusal> {
    let filter = asked.filter()?;
    let mut rows = browse::page(&state.pool, &filter, PAGE + 1).await?;
    let more = rows.len() > usize::try_from(PAGE).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(PAGE).unwrap_or(usize::MAX));
    let body = html! {
        form.filters method="get" action="/deliveries" {
            label { "Provider " select name="provider" {
                option value="" { "any" }
                @for p in Provider::ALL {
                    option value=(p.as_str()) selected[asked.provider == p.as_str()] { (p.as_str()) }
                }
            } }
            label { "Outcome " select name="outcome" {
                option value="" { "any" }
                @for o in OUTCOMES {
                    option value=(o) selected[asked.outcome == *o] { (o) }
                }
            } }
            label { "Event type " input name="type" value=(asked.event_type) maxlength="100" placeholder="orders.payment.succeeded"; }
            label { "From (UTC) " input name="from" type="datetime-local" value=(asked.from); }
            label { "To (UTC) " input name="to" type="datetime-local" value=(asked.to); }
            button type="submit" { "Filter" }
            a href="/deliveries" { "Clear" }
        }
        @if signed.may_act().is_ok() && !rows.is_empty() {
            details.actions {
                summary { "Replay everything this filter matches…" }
                p.none { "A background job: processed deliveries are never sent again; parked ones are redriven; unprocessed ones are published again." }
                (super::jobs::start_form(&signed, &asked))
            }
        }
        @if rows.is_empty() {
            p.none { "No delivery matches." }
        } @else {
            table {
                thead { tr { th { "Row" } th { "Received" } th { "Provider" } th { "Delivery id" } th { "Event type" } th { "Outcome" } th.num { "Bytes" } } }
                tbody {
                    @for d in &rows {
                        tr {
                            td { a href={ "/deliveries/" (d.row) } { "#" (d.row) } }
                            td { (at(&d.received_at)) }
                            td { (d.provider) }
                            td { a href={ "/deliveries/" (d.row) } { code { (d.delivery_id) } } }
                            td { (event_type_of(&d.head).unwrap_or_default()) }
                            td class={ "outcome-" (d.outcome.as_deref().unwrap_or("unprocessed")) } {
                                (d.outcome.as_deref().unwrap_or("unprocessed"))
                                @if let Some(detail) = &d.outcome_detail { br; small { (detail) } }
                            }
                            td.num { (d.size) }
                        }
                    }
                }
            }
            @if more {
                @if let Some(last) = rows.last() {
                    p { a rel="next" href={ "/deliveries?" (asked.with_before(last.row)) } { "Older →" } }
                }
            }
        }
    };
    Ok(layout::page(
        &signed,
        Section::Deliveries,
        "Deliveries",
        body,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_type_is_read_from_compact_and_pretty_bodies() {
        assert_eq!(
            event_type_of(br#"{"type":"orders.payment.succeeded","data":{}}"#).as_deref(),
            Some("orders.payment.succeeded")
        );
        assert_eq!(
            event_type_of(b"{\n  \"id\": \"evt_1\",\n  \"type\": \"charge.refunded\"").as_deref(),
            Some("charge.refunded")
        );
        assert_eq!(event_type_of(b"not json"), None);
    }

    #[test]
    fn nonsense_filters_are_refused_with_their_field() {
        for (asked, field) in [
            (
                Asked {
                    provider: "paypal".into(),
                    ..Asked::default()
                },
                "provider",
            ),
            (
                Asked {
                    outcome: "done'; drop".into(),
                    ..Asked::default()
                },
                "outcome",
            ),
            (
                Asked {
                    event_type: "<script>".into(),
                    ..Asked::default()
                },
                "event type",
            ),
            (
                Asked {
                    from: "yesterday".into(),
                    ..Asked::default()
                },
                "from",
            ),
            (
                Asked {
                    before: "-3".into(),
                    ..Asked::default()
                },
                "before",
            ),
            (
                Asked {
                    from: "2026-12-07T10:00".into(),
                    to: "2026-12-07T09:00".into(),
                    ..Asked::default()
                },
                "from must be before",
            ),
        ] {
            let refusal = asked.filter().unwrap_err();
            assert_eq!(refusal.code, "INVALID_FILTER");
            assert!(refusal.message.starts_with(field), "{}", refusal.message);
        }
    }
}
