//! The ingester's metric names, in one place so the README can list them.

use ledgerhook_shared::deliveries::Provider;

/// Counter: deliveries by `provider` (the route's: `crossmint`, `stripe`)
/// and `outcome` (`accepted`, `duplicate`, or a rejection code in lower
/// case such as `signature_verification_failed`).
pub const DELIVERIES: &str = "ledgerhook_webhook_deliveries_total";
/// Histogram: HTTP request latency by route and status (recorded by
/// `ledgerhook_shared::http::with_http_layers`).
pub const HTTP_DURATION: &str = "ledgerhook_http_request_duration_seconds";
/// Counter: publishes confirmed by the broker.
pub const PUBLISHED: &str = "ledgerhook_outbox_published_total";
/// Counter: publishes that failed (nacked, returned, or the channel died);
/// those deliveries stay in the outbox for the relay.
pub const PUBLISH_FAILURES: &str = "ledgerhook_outbox_publish_failures_total";
/// Counter: deliveries re-sent by the relay.
pub const RELAYED: &str = "ledgerhook_outbox_relayed_total";
/// Gauge: deliveries recorded but not yet confirmed by the broker.
pub const UNPUBLISHED: &str = "ledgerhook_outbox_unpublished";
/// Gauge: age in seconds of the oldest unpublished delivery (0 when none).
pub const UNPUBLISHED_AGE: &str = "ledgerhook_outbox_oldest_unpublished_seconds";
/// Gauge: 1 while the publisher holds a live broker channel.
pub const BROKER_CONNECTED: &str = "ledgerhook_broker_connected";

pub fn delivery_outcome(provider: Provider, outcome: &str) {
    metrics::counter!(
        DELIVERIES,
        "provider" => provider.as_str(),
        "outcome" => outcome.to_owned()
    )
    .increment(1);
}

pub fn published(count: usize) {
    metrics::counter!(PUBLISHED).increment(count as u64);
}

pub fn publish_failed(reason: &'static str) {
    metrics::counter!(PUBLISH_FAILURES, "reason" => reason).increment(1);
}

pub fn relayed() {
    metrics::counter!(RELAYED).increment(1);
}

pub fn backlog(count: i64, oldest_seconds: f64) {
    metrics::gauge!(UNPUBLISHED).set(count as f64);
    metrics::gauge!(UNPUBLISHED_AGE).set(oldest_seconds);
}

pub fn gauge_broker_connected(connected: bool) {
    metrics::gauge!(BROKER_CONNECTED).set(if connected { 1.0 } else { 0.0 });
}
