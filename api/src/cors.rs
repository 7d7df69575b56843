//! Which browser origins may call the API (`CORS_ALLOWED_ORIGINS`): an
//! allow-list of exact origins, never a wildcard. A frontend served from
//! another origin than the API needs its origin here; without the variable
//! the API answers no preflight and sends no CORS headers, so browsers keep
//! other sites' scripts out (the API's bearer tokens are no cookies, but a
//! wildcard would still let any page use a token it holds).

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// How long a browser may reuse a preflight's answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// The allowed origins, checked: each `http(s)://host[:port]`, no path, no
/// wildcard. `Err` names the first that is not one.
pub fn parse_origins(text: &str) -> Result<Vec<HeaderValue>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|origin| !origin.is_empty())
        .map(|origin| {
            let (scheme, rest) = origin
                .split_once("://")
                .ok_or_else(|| format!("{origin:?} is not an origin (scheme://host[:port])"))?;
            let valid = matches!(scheme, "http" | "https")
                && !rest.is_empty()
                && !rest.contains(['/', '*', '?', '#', ' '])
                && rest == rest.to_ascii_lowercase();
            if !valid {
                return Err(format!(
                    "{origin:?} is not an origin: scheme://host[:port] in lower case, no path, no wildcard"
                ));
            }
            HeaderValue::from_str(origin).map_err(|_| format!("{origin:?} is not a header value"))
        })
        .collect()
}

/// The layer for `origins` (none: no CORS headers at all).
pub fn layer(origins: &[HeaderValue]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins.iter().cloned()))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("idempotency-key"),
            ])
            .expose_headers([header::RETRY_AFTER, HeaderName::from_static("x-request-id")])
            .max_age(PREFLIGHT_MAX_AGE),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_exact_and_wildcards_refused() {
        let ok = parse_origins("https://app.example, http://localhost:5173").unwrap();
        assert_eq!(ok.len(), 2);
        for bad in [
            "*",
            "https://*.example",
            "https://app.example/",
            "app.example",
            "ftp://x",
            "https://App.example",
        ] {
            assert!(parse_origins(bad).is_err(), "{bad}");
        }
        assert!(parse_origins("").unwrap().is_empty());
    }
}
