//! The console's metric names, in one place so the README can list them.
//! Its request latency is the shared
//! `ledgerhook_http_request_duration_seconds{service="console"}`.

/// Counter: requests refused, by code (`NOT_SIGNED_IN`, `CSRF_MISMATCH`,
/// `ROLE_FORBIDDEN`, `INVALID_FILTER`, `SEARCH_TOO_COSTLY`, ...).
pub const REFUSALS: &str = "ledgerhook_console_refusals_total";
/// Counter: sign-in attempts, by result (`ok`, `wrong`, `rate_limited`,
/// `proxy`).
pub const LOGINS: &str = "ledgerhook_console_logins_total";
/// Counter: actions taken, by action and result (`done`, `refused`).
pub const ACTIONS: &str = "ledgerhook_console_actions_total";

pub fn refused(code: &'static str) {
    metrics::counter!(REFUSALS, "code" => code).increment(1);
}

pub fn login(result: &'static str) {
    metrics::counter!(LOGINS, "result" => result).increment(1);
}

pub fn action(action: &'static str, done: bool) {
    let result = if done { "done" } else { "refused" };
    metrics::counter!(ACTIONS, "action" => action, "result" => result).increment(1);
}

pub fn describe() {
    metrics::describe_counter!(REFUSALS, "Console requests refused, by code");
    metrics::describe_counter!(LOGINS, "Console sign-in attempts, by result");
    metrics::describe_counter!(ACTIONS, "Console actions, by action and result");
    ledgerhook_runtime::http::describe_metrics();
}
