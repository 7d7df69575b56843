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

use ledgerhook_shared::notifications::outbox::Counts;

pub fn attempt(channel: &'static str, outcome: &'static str, took: Duration) {
    metrics::counter!("ledgerhook_notifications_total", "channel" => channel, "outcome" => outcome)
        .increment(1);
    metrics::histogram!("ledgerhook_notification_send_seconds", "channel" => channel)
        .record(took.as_secs_f64());
}

pub fn claimed() {
    metrics::counter!("ledgerhook_notifier_claims_total").increment(1);
}

pub fn counts(counts: Counts) {
    metrics::gauge!("ledgerhook_notifications_pending").set(counts.pending as f64);
    metrics::gauge!("ledgerhook_notifications_parked").set(counts.parked as f64);
}
