//! The API's metric names, in one place so the README can list them. Its
//! request latency is the shared
//! `ledgerhook_http_request_duration_seconds{service="api"}`.

use ledgerhook_domain::PaymentProvider;
use ledgerhook_providers::crossmint::CrossmintError;
use ledgerhook_providers::stripe::checkout::StripeError;
use ledgerhook_runtime::http;
/// Counter: requests refused by a rate limit, by action.
pub const RATE_LIMITED: &str = "ledgerhook_api_rate_limited_total";
/// Counter: Crossmint calls that failed, by reason (timeout, unreachable,
/// refused, unreadable).
pub const CROSSMINT_FAILURES: &str = "ledgerhook_crossmint_failures_total";

pub fn rate_limited(action: &'static str) {
    metrics::counter!(RATE_LIMITED, "action" => action).increment(1);
}

/// Counter: Stripe Checkout Session creations that failed, by reason
/// (timeout, unreachable, too_large, unreadable, or Stripe's error type:
/// api_error, invalid_request_error, authentication, rate_limited, ...).
pub const STRIPE_FAILURES: &str = "ledgerhook_stripe_failures_total";
/// Counter: orders refused because their provider is not configured here
/// (`provider="stripe"` without `STRIPE_SECRET_KEY`), by provider.
pub const PROVIDER_UNAVAILABLE: &str = "ledgerhook_api_provider_unavailable_total";

pub fn crossmint_failure(reason: &'static str) {
    metrics::counter!(CROSSMINT_FAILURES, "reason" => reason).increment(1);
}

pub fn stripe_failure(reason: &'static str) {
    metrics::counter!(STRIPE_FAILURES, "reason" => reason).increment(1);
}

pub fn provider_unavailable(provider: &'static str) {
    metrics::counter!(PROVIDER_UNAVAILABLE, "provider" => provider).increment(1);
}
/// Counter: orders created and recorded pending (an idempotent replay is
/// not a new order), by `provider` (crossmint, stripe): summed, the
/// payment timeout rate's denominator.
pub const ORDERS_CREATED: &str = "ledgerhook_api_orders_created_total";
/// Counter: order requests answered from an earlier one with the same
/// `Idempotency-Key`, by outcome (`replayed`, `duplicate_order` for the
/// same key with another package).
pub const ORDER_KEY_REUSES: &str = "ledgerhook_api_order_idempotency_total";
/// Counter: usage writes that failed after a successful spend (the spend
/// still answered as usual).
pub const USAGE_WRITE_FAILURES: &str = "ledgerhook_usage_write_failures_total";
/// Counter: confirm requests answered PAYMENT_TIMEOUT (the order expired).
pub const PAYMENT_TIMEOUTS: &str = "ledgerhook_api_payment_timeouts_total";
/// [`ORDER_KEY_REUSES`]' outcomes.
pub const KEY_REPLAYED: &str = "replayed";
pub const KEY_DUPLICATE_ORDER: &str = "duplicate_order";
/// [`RATE_LIMITED`]'s actions.
pub const CONFIRM: &str = "confirm";
/// Rate-limited actions: one user's order creations, everyone's together,
/// and orders refused for the user's open ones (`TOO_MANY_PENDING_ORDERS`).
pub const ORDERS: &str = "orders";
pub const ORDERS_GLOBAL: &str = "orders_global";
pub const PENDING_ORDERS: &str = "pending_orders";

/// HELP text for every metric of the API, and every counter at zero (see
/// `ledgerhook_runtime::telemetry::install_metrics_recorder`).
pub fn describe() {
    http::describe_metrics();
    metrics::describe_counter!(RATE_LIMITED, "Requests refused by a rate limit, by action");
    metrics::describe_counter!(
        AUTH_REFUSED,
        "Requests refused for their token or API key, by reason"
    );
    metrics::describe_counter!(
        JWKS_FETCHES,
        "Fetches of the sign-in provider's keys (AUTH_JWKS_URL), by result"
    );
    metrics::describe_gauge!(JWKS_KEYS, "The sign-in provider's keys held");
    metrics::describe_counter!(
        CROSSMINT_FAILURES,
        "Crossmint order creations that failed, by reason"
    );
    metrics::describe_counter!(
        STRIPE_FAILURES,
        "Stripe Checkout Session creations that failed, by reason (how the call failed, or Stripe's error type)"
    );
    metrics::describe_counter!(
        PROVIDER_UNAVAILABLE,
        "Orders refused because their provider is not configured here, by provider"
    );
    metrics::describe_counter!(
        ORDERS_CREATED,
        "Orders created and recorded pending, by provider (a replay is not a new order)"
    );
    metrics::describe_counter!(
        ORDER_KEY_REUSES,
        "Order requests answered from an earlier one with the same Idempotency-Key, by outcome (replayed, duplicate_order)"
    );
    metrics::describe_counter!(
        USAGE_WRITE_FAILURES,
        "Usage records that could not be written after a successful spend (the spend still stood)"
    );
    metrics::describe_counter!(
        PAYMENT_TIMEOUTS,
        "Confirm requests answered PAYMENT_TIMEOUT (the order expired unpaid)"
    );
    for action in [CONFIRM, ORDERS, ORDERS_GLOBAL, PENDING_ORDERS] {
        metrics::counter!(RATE_LIMITED, "action" => action).increment(0);
    }
    for reason in CrossmintError::REASONS {
        metrics::counter!(CROSSMINT_FAILURES, "reason" => reason).increment(0);
    }
    for reason in StripeError::REASONS {
        metrics::counter!(STRIPE_FAILURES, "reason" => reason).increment(0);
    }
    for provider in PaymentProvider::ALL.map(PaymentProvider::as_str) {
        metrics::counter!(PROVIDER_UNAVAILABLE, "provider" => provider).increment(0);
        metrics::counter!(ORDERS_CREATED, "provider" => provider).increment(0);
    }
    for outcome in [KEY_REPLAYED, KEY_DUPLICATE_ORDER] {
        metrics::counter!(ORDER_KEY_REUSES, "outcome" => outcome).increment(0);
    }
    metrics::counter!(USAGE_WRITE_FAILURES).increment(0);
    metrics::counter!(PAYMENT_TIMEOUTS).increment(0);
}

pub fn order_created(provider: &'static str) {
    metrics::counter!(ORDERS_CREATED, "provider" => provider).increment(1);
}

pub fn order_key_reused(outcome: &'static str) {
    metrics::counter!(ORDER_KEY_REUSES, "outcome" => outcome).increment(1);
}

pub fn usage_write_failed() {
    metrics::counter!(USAGE_WRITE_FAILURES).increment(1);
}

pub fn payment_timeout() {
    metrics::counter!(PAYMENT_TIMEOUTS).increment(1);
}

/// Counter: requests refused for their credentials, by `reason` (missing,
/// malformed, algorithm, crit, no_kid, unknown_kid, signature, no_exp,
/// expired, not_yet_valid, lifetime, issuer, audience, no_user,
/// user_too_long, api_key, keys_unavailable).
pub const AUTH_REFUSED: &str = "ledgerhook_api_auth_refused_total";
/// Counter: fetches of the sign-in provider's keys, by `result` (ok,
/// failed); gauge: the keys held.
pub const JWKS_FETCHES: &str = "ledgerhook_api_jwks_fetches_total";
pub const JWKS_KEYS: &str = "ledgerhook_api_jwks_keys";

pub fn auth_refused(reason: &'static str) {
    metrics::counter!(AUTH_REFUSED, "reason" => reason).increment(1);
}

pub fn jwks_fetched(result: &'static str, keys_held: usize) {
    metrics::counter!(JWKS_FETCHES, "result" => result).increment(1);
    metrics::gauge!(JWKS_KEYS).set(keys_held as f64);
}
