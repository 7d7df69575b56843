//! The API's metric names, in one place so the README can list them.

use std::time::Duration;

/// Histogram: HTTP request latency by route and status (the request count
/// is its `_count`).
pub const HTTP_DURATION: &str = "ledgerhook_api_request_duration_seconds";
/// Counter: requests refused by a rate limit, by action.
pub const RATE_LIMITED: &str = "ledgerhook_api_rate_limited_total";
/// Counter: Crossmint calls that failed, by reason (timeout, unreachable,
/// refused, unreadable).
pub const CROSSMINT_FAILURES: &str = "ledgerhook_crossmint_failures_total";

pub fn http_request(route: String, status: u16, elapsed: Duration) {
    metrics::histogram!(HTTP_DURATION, "route" => route, "status" => status.to_string())
        .record(elapsed.as_secs_f64());
}

pub fn rate_limited(action: &'static str) {
    metrics::counter!(RATE_LIMITED, "action" => action).increment(1);
}

pub fn crossmint_failure(reason: &'static str) {
    metrics::counter!(CROSSMINT_FAILURES, "reason" => reason).increment(1);
}
