//! The notifier's metrics.
//!
//! - `ledgerhook_notifications_total{channel,outcome}`: attempts by how they
//!   ended (`sent`, `retried`, `parked`);
//! - `ledgerhook_notification_send_seconds{channel}`: how long a send took;
//! - `ledgerhook_notifier_claims_total`: claims made (one per look at the
//!   outbox, whether or not anything was due): the notifier is alive and polling;
//! - `ledgerhook_notifications_pending`, `ledgerhook_notifications_parked`:
//!   rows waiting to be sent (due or backing off), and rows parked for a
//!   person (the alert watches this one).

use std::time::Duration;

use ledgerhook_domain::Channel;
use ledgerhook_store::notifications::outbox::{Counts, Outcome};

pub const ATTEMPTS: &str = "ledgerhook_notifications_total";
pub const SEND_SECONDS: &str = "ledgerhook_notification_send_seconds";
pub const CLAIMS: &str = "ledgerhook_notifier_claims_total";
pub const PENDING: &str = "ledgerhook_notifications_pending";
pub const PARKED: &str = "ledgerhook_notifications_parked";

/// HELP text for every metric of the notifier, and every counter at zero
/// (see `ledgerhook_runtime::telemetry::install_metrics_recorder`).
pub fn describe() {
    metrics::describe_counter!(
        ATTEMPTS,
        "Notification send attempts, by channel and outcome (sent, retried, parked)"
    );
    metrics::describe_histogram!(
        SEND_SECONDS,
        "How long a notification send took, by channel"
    );
    metrics::describe_counter!(
        CLAIMS,
        "Looks at the notification outbox (one per poll, due rows or not): the notifier is alive"
    );
    metrics::describe_gauge!(
        PENDING,
        "Notifications waiting to be sent (due or backing off)"
    );
    metrics::describe_gauge!(
        PARKED,
        "Notifications parked for a person after their last attempt"
    );
    for channel in Channel::ALL {
        for outcome in Outcome::LABELS {
            metrics::counter!(ATTEMPTS, "channel" => channel.as_str(), "outcome" => outcome)
                .increment(0);
        }
    }
    metrics::counter!(CLAIMS).increment(0);
}

pub fn attempt(channel: &'static str, outcome: &'static str, took: Duration) {
    metrics::counter!(ATTEMPTS, "channel" => channel, "outcome" => outcome).increment(1);
    metrics::histogram!(SEND_SECONDS, "channel" => channel).record(took.as_secs_f64());
}

pub fn claimed() {
    metrics::counter!(CLAIMS).increment(1);
}

pub fn counts(counts: Counts) {
    metrics::gauge!(PENDING).set(counts.pending as f64);
    metrics::gauge!(PARKED).set(counts.parked as f64);
}
