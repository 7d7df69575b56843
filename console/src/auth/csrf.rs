//! Cross-site request forgery, refused twice over for every state change:
//! the browser must say the request is same-origin (`Sec-Fetch-Site`, or
//! `Origin` matching `Host`), and the form must carry the session's CSRF
//! token (field `csrf`, or header `x-csrf-token` from htmx).

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{Signed, same};
use crate::refusal::Refusal;

/// The largest form the console takes: its forms are a few short fields.
pub const MAX_FORM_BYTES: usize = 16 * 1024;
/// The header htmx may send the token in.
pub const HEADER: &str = "x-csrf-token";

/// Runs after [`super::session::require`] on every signed-in route.
pub async fn guard(request: Request, next: Next) -> Response {
    if request.method() == Method::GET || request.method() == Method::HEAD {
        return next.run(request).await;
    }
    if let Err(refusal) = same_origin(request.headers()) {
        return refusal.into_response();
    }
    let Some(expected) = request
        .extensions()
        .get::<Signed>()
        .map(|s| s.csrf_token.clone())
    else {
        return mismatch().into_response();
    };
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_FORM_BYTES).await else {
        return Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "FORM_TOO_LARGE",
            format!("a console form is at most {MAX_FORM_BYTES} bytes"),
        )
        .into_response();
    };
    let from_header = parts.headers.get(HEADER).map(|v| v.as_bytes().to_vec());
    let from_form = form_urlencoded::parse(&bytes)
        .find(|(name, _)| name == "csrf")
        .map(|(_, value)| value.into_owned().into_bytes());
    let sent = from_header.or(from_form).unwrap_or_default();
    if !same(&sent, expected.as_bytes()) {
        return mismatch().into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn mismatch() -> Refusal {
    Refusal::new(
        StatusCode::FORBIDDEN,
        "CSRF_MISMATCH",
        "this form is stale or did not come from the console: reload the page and try again",
    )
}

/// Refuses a request the browser says came from another site. A client
/// that sends neither header (curl) passes this check; the token then
/// decides.
pub fn same_origin(headers: &HeaderMap) -> Result<(), Refusal> {
    let cross = |reason: &str| {
        Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "CROSS_SITE_REQUEST",
            format!("refused a state change from another site ({reason})"),
        ))
    };
    // A browser that sends Sec-Fetch-Site has said where the request came
    // from; its word is enough (its Origin may be "null" under a strict
    // referrer policy). Older browsers send Origin only.
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return if matches!(site, "same-origin" | "none") {
            Ok(())
        } else {
            cross("Sec-Fetch-Site")
        };
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let origin_host = origin
            .split_once("://")
            .map_or("", |(_, rest)| rest.trim_end_matches('/'));
        if origin == "null" || origin_host != host {
            return cross("Origin");
        }
    }
    Ok(())
}
