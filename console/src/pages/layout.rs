//! The page shell: head (styles, htmx, its configuration), the navigation,
//! and helpers every page uses. Every value is interpolated through maud,
//! which escapes it: nothing from a webhook reaches the page as markup.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};

use crate::assets;
use crate::auth::Signed;

/// htmx without `eval` (the CSP forbids it), without the inline styles it
/// would add (the CSP forbids those too), and without running scripts it
/// swaps in.
const HTMX_CONFIG: &str = r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"selfRequestsOnly":true}"#;

/// The sections, in the navigation's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Overview,
    Deliveries,
    Held,
    Parked,
    Rejected,
    Users,
    Control,
    Audit,
}

const SECTIONS: &[(Section, &str, &str)] = &[
    (Section::Overview, "/", "Overview"),
    (Section::Deliveries, "/deliveries", "Deliveries"),
    (Section::Held, "/held", "Held orders"),
    (Section::Parked, "/parked", "Parked"),
    (Section::Rejected, "/rejected", "Rejected"),
    (Section::Users, "/users", "Users"),
    (Section::Control, "/control", "Pause"),
    (Section::Audit, "/audit", "Audit"),
];

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="htmx-config" content=(HTMX_CONFIG);
            title { (title) " · ledgerhook console" }
            link rel="stylesheet" href=(assets::CSS_PATH);
            script src=(assets::HTMX_PATH) defer {}
        }
    }
}

/// A signed-in page.
pub fn page(signed: &Signed, section: Section, title: &str, body: Markup) -> Markup {
    let csrf_header = format!(r#"{{"x-csrf-token":"{}"}}"#, signed.csrf_token);
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body hx-headers=(csrf_header) {
                header {
                    nav {
                        span.brand { "ledgerhook" }
                        @for (s, href, label) in SECTIONS {
                            @if *s == section {
                                a.active href=(href) aria-current="page" { (label) }
                            } @else {
                                a href=(href) { (label) }
                            }
                        }
                    }
                    form.search method="get" action="/search" {
                        input name="q" type="search" placeholder="svix-id, evt_…, order, user, pi_…" aria-label="Find" maxlength="200";
                        button type="submit" { "Find" }
                    }
                    div.who {
                        span { (signed.name) " (" (signed.role.as_str()) ")" }
                        form method="post" action="/logout" {
                            (csrf(signed))
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page without the navigation (signing in, choosing a password).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body.bare { main { (body) } }
        }
    }
}

pub fn refusal_page(status: StatusCode, code: &str, message: &str) -> Markup {
    bare(
        "Refused",
        html! {
            h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
            p.refusal role="alert" { code { (code) } ": " (message) }
            p { a href="/" { "Back to the console" } }
        },
    )
}

/// The hidden field every state-changing form carries.
pub fn csrf(signed: &Signed) -> Markup {
    html! { input type="hidden" name="csrf" value=(signed.csrf_token); }
}

/// A time as the console shows it (UTC, seconds).
pub fn at(time: &DateTime<Utc>) -> Markup {
    html! { time datetime=(time.to_rfc3339()) { (time.format("%Y-%m-%d %H:%M:%S UTC")) } }
}

pub fn at_opt(time: Option<&DateTime<Utc>>) -> Markup {
    match time {
        Some(time) => at(time),
        None => html! { span.none { "—" } },
    }
}

/// The result of an action: what it did, in the words ledgerhook-admin
/// prints, with its refusal code when it refused.
pub fn outcome(printout: &ledgerhook_admin::Printout) -> Markup {
    html! {
        @if let Some(code) = printout.refused {
            p.refusal role="alert" { code { (code) } ": " (printout.text.trim_start_matches("refused: ")) }
        } @else {
            pre.done role="status" { (printout.text) }
        }
    }
}

/// A link to a user's page.
pub fn user_link(user_id: &str) -> Markup {
    html! { a href={ "/users?id=" (urlencode(user_id)) } { (user_id) } }
}

/// A link to an order's page.
pub fn order_link(order: &str) -> Markup {
    html! { a href={ "/orders?id=" (urlencode(order)) } { (order) } }
}

/// Percent-encodes a query value.
pub fn urlencode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
