//! The ingester's metric names, in one place so the README can list them.

use std::collections::HashMap;
use std::sync::OnceLock;

use ledgerhook_domain::Provider;
use ledgerhook_runtime::http;
use metrics::Counter;

use crate::rejection::Rejection;

/// Counter: deliveries by `provider` (the route's: `crossmint`, `stripe`)
/// and `outcome` (`accepted`, `duplicate`, or a rejection code in lower
/// case such as `signature_verification_failed`).
pub const DELIVERIES: &str = "ledgerhook_webhook_deliveries_total";
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

/// [`DELIVERIES`]' outcomes besides the rejections (and the `status` the
/// sender reads in a 200).
pub const ACCEPTED: &str = "accepted";
pub const DUPLICATE: &str = "duplicate";
/// The providers with a webhook route here.
const ROUTES: [Provider; 2] = [Provider::Crossmint, Provider::Stripe];
/// [`PUBLISH_FAILURES`]' reasons: the broker nacked or returned the message,
/// or the channel died before it confirmed.
pub const PUBLISH_REJECTED: &str = "rejected";
pub const PUBLISH_CHANNEL_LOST: &str = "channel_lost";

/// HELP text for every metric of the ingester, and every counter at zero
/// (see `ledgerhook_runtime::telemetry::install_metrics_recorder`).
/// Counter: refused requests offered to the rejection log, by result:
/// `written` (in `rejected_requests`), `rate_limited` (over
/// `REJECTED_REQUESTS_PER_SECOND`), `dropped` (the writer was behind),
/// `failed` (the database refused the note).
pub const REJECTIONS_NOTED: &str = "ledgerhook_rejections_noted_total";
pub const NOTE_WRITTEN: &str = "written";
pub const NOTE_RATE_LIMITED: &str = "rate_limited";
pub const NOTE_DROPPED: &str = "dropped";
pub const NOTE_FAILED: &str = "failed";

pub fn rejection_noted(result: &'static str) {
    metrics::counter!(REJECTIONS_NOTED, "result" => result).increment(1);
}

pub fn describe() {
    http::describe_metrics();
    metrics::describe_counter!(
        REJECTIONS_NOTED,
        "Refused requests offered to the rejection log, by result (written, rate_limited, dropped, failed)"
    );
    metrics::describe_counter!(
        DELIVERIES,
        "Webhook deliveries by provider and outcome (accepted, duplicate, or the rejection code in lower case)"
    );
    metrics::describe_counter!(
        PUBLISHED,
        "Publishes of recorded deliveries confirmed by the broker"
    );
    metrics::describe_counter!(
        PUBLISH_FAILURES,
        "Publishes that failed (rejected by the broker, or channel_lost); the delivery stays in the outbox for the relay"
    );
    metrics::describe_counter!(RELAYED, "Deliveries re-sent from the outbox by the relay");
    metrics::describe_gauge!(
        UNPUBLISHED,
        "Deliveries recorded but not yet confirmed by the broker"
    );
    metrics::describe_gauge!(
        UNPUBLISHED_AGE,
        "Age in seconds of the oldest unpublished delivery (0 when none)"
    );
    metrics::describe_gauge!(
        BROKER_CONNECTED,
        "1 while the publisher holds a live broker channel"
    );
    for provider in ROUTES {
        for outcome in all_outcomes() {
            metrics::counter!(DELIVERIES, "provider" => provider.as_str(), "outcome" => outcome)
                .increment(0);
        }
    }
    metrics::counter!(PUBLISHED).increment(0);
    for reason in [PUBLISH_REJECTED, PUBLISH_CHANNEL_LOST] {
        metrics::counter!(PUBLISH_FAILURES, "reason" => reason).increment(0);
    }
    metrics::counter!(RELAYED).increment(0);
    backlog(0, 0.0);
    gauge_broker_connected(false);
}

/// Counts a delivery's outcome. Every (route, outcome) pair's counter is
/// looked up in the registry once, on first use (the recorder is installed
/// by then), and then only incremented: a label lookup per request was a
/// measurable share of the hot path.
pub fn delivery_outcome(provider: Provider, outcome: &str) {
    static COUNTERS: OnceLock<Vec<(Provider, HashMap<String, Counter>)>> = OnceLock::new();
    let counters = COUNTERS.get_or_init(|| {
        ROUTES
            .into_iter()
            .map(|route| {
                let outcomes = all_outcomes()
                    .map(|outcome| {
                        let counter = metrics::counter!(
                            DELIVERIES,
                            "provider" => route.as_str(),
                            "outcome" => outcome.clone()
                        );
                        (outcome, counter)
                    })
                    .collect();
                (route, outcomes)
            })
            .collect()
    });
    let known = counters
        .iter()
        .find(|(route, _)| *route == provider)
        .and_then(|(_, outcomes)| outcomes.get(outcome));
    match known {
        Some(counter) => counter.increment(1),
        None => metrics::counter!(
            DELIVERIES,
            "provider" => provider.as_str(),
            "outcome" => outcome.to_owned()
        )
        .increment(1),
    }
}

/// Every outcome [`DELIVERIES`] counts.
fn all_outcomes() -> impl Iterator<Item = String> {
    [ACCEPTED, DUPLICATE]
        .map(str::to_owned)
        .into_iter()
        .chain(Rejection::ALL.map(Rejection::outcome))
}

pub fn published(count: usize) {
    metrics::counter!(PUBLISHED).increment(count as u64);
}

pub fn publish_failed(reason: &'static str) {
    metrics::counter!(PUBLISH_FAILURES, "reason" => reason).increment(1);
}

pub fn relayed(count: usize) {
    metrics::counter!(RELAYED).increment(count as u64);
}

pub fn backlog(count: i64, oldest_seconds: f64) {
    metrics::gauge!(UNPUBLISHED).set(count as f64);
    metrics::gauge!(UNPUBLISHED_AGE).set(oldest_seconds);
}

pub fn gauge_broker_connected(connected: bool) {
    metrics::gauge!(BROKER_CONNECTED).set(if connected { 1.0 } else { 0.0 });
}
