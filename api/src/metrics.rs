//! The API's metric names, in one place so the README can list them.

/// Histogram: HTTP request latency by route and status (the request count
/// is its `_count`), recorded by `ledgerhook_shared::http::with_http_layers`.
pub const HTTP_DURATION: &str = "ledgerhook_api_request_duration_seconds";
/// Counter: requests refused by a rate limit, by action.
pub const RATE_LIMITED: &str = "ledgerhook_api_rate_limited_total";
/// Counter: Crossmint calls that failed, by reason (timeout, unreachable,
/// refused, unreadable).
pub const CROSSMINT_FAILURES: &str = "ledgerhook_crossmint_failures_total";

pub fn rate_limited(action: &'static str) {
    metrics::counter!(RATE_LIMITED, "action" => action).increment(1);
}

pub fn crossmint_failure(reason: &'static str) {
    metrics::counter!(CROSSMINT_FAILURES, "reason" => reason).increment(1);
}
