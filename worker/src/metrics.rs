//! The worker's metric names, in one place so the README can list them.

use std::time::Duration;

/// Histogram: delivery received by the ingester → its effects committed, by outcome.
pub const PROCESSING: &str = "ledgerhook_webhook_processing_seconds";
/// Counter: processed deliveries by outcome (granted, duplicate, conflict,
/// recorded, ignored, already_processed, parked).
pub const PROCESSED: &str = "ledgerhook_worker_deliveries_total";
/// Counter: credit grants committed, and the credits they added.
pub const GRANTS: &str = "ledgerhook_grants_total";
pub const CREDITS_GRANTED: &str = "ledgerhook_credits_granted_total";
/// Counter: grant-triggering events for orders already granted.
pub const DUPLICATE_ORDERS: &str = "ledgerhook_duplicate_orders_total";
/// Counter: events that contradict their order (amount, currency, user, package).
pub const CONFLICTS: &str = "ledgerhook_order_conflicts_total";
/// Counter: events that make no sense in the order's state (paid after cancel, ...).
pub const ANOMALIES: &str = "ledgerhook_order_anomalies_total";
/// Counter: payment events applied, by result (`succeeded`, `failed`): the
/// payment success rate's numerator and denominator.
pub const PAYMENTS: &str = "ledgerhook_payments_total";
/// Counter: processing attempts that will be retried, by reason.
pub const RETRIES: &str = "ledgerhook_worker_retries_total";
/// Counter: credits removed by the expiry job because they expired unspent.
pub const CREDITS_EXPIRED: &str = "ledgerhook_credits_expired_total";
/// Counter: messages given up on and parked, by reason.
pub const PARKED: &str = "ledgerhook_parked_total";

/// `provider` is who took the payment (`crossmint`, `stripe`), or
/// `unknown` for a message parked before it could be read.
pub fn processed(outcome: &'static str, provider: &'static str, since_received: Option<Duration>) {
    metrics::counter!(PROCESSED, "outcome" => outcome, "provider" => provider).increment(1);
    if let Some(latency) = since_received {
        metrics::histogram!(PROCESSING, "outcome" => outcome, "provider" => provider)
            .record(latency.as_secs_f64());
    }
}

pub fn granted(provider: &'static str, credits: i64) {
    metrics::counter!(GRANTS, "provider" => provider).increment(1);
    metrics::counter!(CREDITS_GRANTED, "provider" => provider).increment(credits.unsigned_abs());
}

pub fn duplicate_order(provider: &'static str) {
    metrics::counter!(DUPLICATE_ORDERS, "provider" => provider).increment(1);
}

/// Counter: refunds and chargebacks applied, by provider and kind: the
/// refund/chargeback rate's numerator (over `ledgerhook_payments_total`).
pub const REVERSALS: &str = "ledgerhook_payment_reversals_total";
/// Counter: credits refunds and chargebacks took back, and those they could
/// not (already spent), by kind and `part` (`taken`, `shortfall`).
pub const REVERSED_CREDITS: &str = "ledgerhook_reversed_credits_total";

pub fn reversed(provider: &'static str, kind: &'static str, taken: i64, shortfall: i64) {
    metrics::counter!(REVERSALS, "provider" => provider, "kind" => kind).increment(1);
    metrics::counter!(REVERSED_CREDITS, "kind" => kind, "part" => "taken")
        .increment(taken.unsigned_abs());
    metrics::counter!(REVERSED_CREDITS, "kind" => kind, "part" => "shortfall")
        .increment(shortfall.unsigned_abs());
}

pub fn conflict() {
    metrics::counter!(CONFLICTS).increment(1);
}

pub fn anomaly() {
    metrics::counter!(ANOMALIES).increment(1);
}

pub fn payment(provider: &'static str, result: &'static str) {
    metrics::counter!(PAYMENTS, "provider" => provider, "result" => result).increment(1);
}

pub fn retry(reason: &'static str) {
    metrics::counter!(RETRIES, "reason" => reason).increment(1);
}

pub fn parked(reason: &'static str) {
    metrics::counter!(PARKED, "reason" => reason).increment(1);
}

pub fn credits_expired(credits: i64) {
    metrics::counter!(CREDITS_EXPIRED).increment(credits.unsigned_abs());
}

/// Counter: orders reconcile asked Crossmint about, by result (recorded,
/// already_recorded, not_paid, failed).
pub const RECONCILED: &str = "ledgerhook_reconcile_orders_total";

pub fn reconciled(result: &'static str) {
    metrics::counter!(RECONCILED, "result" => result).increment(1);
}

/// Counter: orders the payment timeout job marked expired (unpaid after
/// `PAYMENT_TIMEOUT_MINUTES`): the timeout rate's numerator, over the API's
/// `ledgerhook_api_orders_created_total`.
pub const ORDERS_EXPIRED: &str = "ledgerhook_orders_expired_total";

pub fn orders_expired(orders: u64) {
    metrics::counter!(ORDERS_EXPIRED).increment(orders);
}

/// Gauge: 1 while this worker is paused by the operator's switch and has
/// left the broker, 0 while it consumes.
pub const PAUSED: &str = "ledgerhook_processing_paused";
/// Gauges: orders whose revoke fell short (credits already spent), and the
/// credits that could not be taken back; read from the database by every
/// worker (the same figure on each).
pub const REVOKE_SHORTFALL_ORDERS: &str = "ledgerhook_revoke_shortfall_orders";
pub const REVOKE_SHORTFALL_CREDITS: &str = "ledgerhook_revoke_shortfall_credits";

pub fn paused(paused: bool) {
    metrics::gauge!(PAUSED).set(if paused { 1.0 } else { 0.0 });
}

pub fn revoke_shortfall(orders: i64, credits: i64) {
    metrics::gauge!(REVOKE_SHORTFALL_ORDERS).set(orders as f64);
    metrics::gauge!(REVOKE_SHORTFALL_CREDITS).set(credits as f64);
}
