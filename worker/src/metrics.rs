//! The worker's metric names, in one place so the README can list them.

use std::time::Duration;

use ledgerhook_domain::{PaymentProvider, ReversalKind};
use ledgerhook_store::ledger::Applied;

use crate::reconcile::FindingResult;

/// Histogram: delivery received by the ingester → its effects committed, by outcome.
pub const PROCESSING: &str = "ledgerhook_webhook_processing_seconds";
/// Counter: processed deliveries by outcome (granted, duplicate, conflict,
/// recorded, ignored, already_processed, parked).
pub const PROCESSED: &str = "ledgerhook_worker_deliveries_total";
/// [`PROCESSED`]'s outcome for a message given up on (the others are
/// `ledgerhook_store::ledger::Applied::outcome`'s).
pub const PARKED_OUTCOME: &str = "parked";
/// Counter: credit grants committed, and the credits they added.
pub const GRANTS: &str = "ledgerhook_grants_total";
pub const CREDITS_GRANTED: &str = "ledgerhook_credits_granted_total";
/// Counter: grant-triggering events for orders already granted.
pub const DUPLICATE_ORDERS: &str = "ledgerhook_duplicate_orders_total";
/// Counter: events that contradict their order (amount, currency, user, package).
pub const CONFLICTS: &str = "ledgerhook_order_conflicts_total";
/// Counter: events that make no sense in the order's state (paid after cancel, ...).
pub const ANOMALIES: &str = "ledgerhook_order_anomalies_total";
/// Counter: orders by how their payment ended, by provider and result:
/// `succeeded` (granted), `failed` (the provider said so), `held` (a payment
/// contradicting its order, held for review), `expired` (unpaid at the
/// payment timeout). Each order counts once per result; duplicates and
/// repeated events count nothing. The payment success rate is `succeeded`
/// over all of them. (A payment arriving after its order expired counts
/// both `expired` and `succeeded`: a counter cannot take one back.)
pub const PAYMENTS: &str = "ledgerhook_payments_total";
/// Every `result` of [`PAYMENTS`].
pub const PAYMENT_RESULTS: [&str; 4] = ["succeeded", "failed", "held", "expired"];
/// Counter: processing attempts that will be retried, by reason.
pub const RETRIES: &str = "ledgerhook_worker_retries_total";
/// Counter: messages set aside unprocessed because their provider is
/// paused on its own, by provider (each comes back every
/// `settler::DEFER_DELAY` until resumed).
pub const DEFERRED: &str = "ledgerhook_worker_deferred_total";
/// Counter: credits removed by the expiry job because they expired unspent.
pub const CREDITS_EXPIRED: &str = "ledgerhook_credits_expired_total";
/// Counter: messages given up on and parked, by reason.
pub const PARKED: &str = "ledgerhook_parked_total";

/// Why a message is retried or parked: the `reason` of [`RETRIES`] and
/// [`PARKED`].
pub mod reason {
    /// The database refused or could not be reached (retried in place).
    pub const DATABASE: &str = "database";
    /// A payment or refund for an order not known yet (retried, then parked).
    pub const ORDER_UNKNOWN: &str = "order_unknown";
    /// The message names no delivery row, or not a valid one.
    pub const MALFORMED_MESSAGE: &str = "malformed_message";
    /// The order names a package the catalogue no longer has.
    pub const UNKNOWN_PACKAGE: &str = "unknown_package";
    /// The database refused the write for good (a constraint, say).
    pub const DATABASE_REFUSED: &str = "database_refused";
    /// The message's provider header names no provider this build knows.
    pub const UNKNOWN_PROVIDER: &str = "unknown_provider";
    /// The delivery's body could not be read as the provider's event.
    pub const UNPARSEABLE: &str = "unparseable";

    pub const RETRIED: [&str; 2] = [DATABASE, ORDER_UNKNOWN];
    pub const PARKED: [&str; 6] = [
        ORDER_UNKNOWN,
        MALFORMED_MESSAGE,
        UNKNOWN_PACKAGE,
        DATABASE_REFUSED,
        UNKNOWN_PROVIDER,
        UNPARSEABLE,
    ];
}

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

/// Counter: orders refunded or charged back, by provider and kind, each
/// once (a second partial refund is not counted again): the refund and
/// chargeback rates' numerator (over `ledgerhook_payments_total`).
pub const REVERSALS: &str = "ledgerhook_payment_reversals_total";
/// Counter: credits refunds and chargebacks took back, and those they could
/// not (already spent), by kind and `part` (`taken`, `shortfall`).
pub const REVERSED_CREDITS: &str = "ledgerhook_reversed_credits_total";

/// A refund's or chargeback's credits; the order is counted in
/// [`REVERSALS`] only at its first of that kind (orders, not events).
pub fn reversed(
    provider: &'static str,
    kind: &'static str,
    taken: i64,
    shortfall: i64,
    first_of_order: bool,
) {
    if first_of_order {
        metrics::counter!(REVERSALS, "provider" => provider, "kind" => kind).increment(1);
    }
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

pub fn payments(provider: &'static str, result: &'static str, orders: u64) {
    metrics::counter!(PAYMENTS, "provider" => provider, "result" => result).increment(orders);
}

pub fn deferred(provider: &'static str) {
    metrics::counter!(DEFERRED, "provider" => provider).increment(1);
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

/// Counter: retention runs, by result (`done`, `skipped`: another run held
/// the lock, `failed`).
pub const RETENTION_RUNS: &str = "ledgerhook_retention_runs_total";
/// Counter: rows whose personal data retention dropped, by table
/// (`webhook_deliveries`, `notifications`).
pub const RETENTION_SCRUBBED: &str = "ledgerhook_retention_scrubbed_total";
/// Counter: `webhook_deliveries` partitions retention made (`created`) or
/// dropped (`dropped`), by action.
pub const RETENTION_PARTITIONS: &str = "ledgerhook_retention_partitions_total";

pub fn retention_run(result: &'static str) {
    metrics::counter!(RETENTION_RUNS, "result" => result).increment(1);
}

/// What a finished run counted.
pub fn retention_counted(report: &crate::retention::Report) {
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    metrics::counter!(RETENTION_SCRUBBED, "table" => "webhook_deliveries")
        .increment(count(report.deliveries_scrubbed));
    metrics::counter!(RETENTION_SCRUBBED, "table" => "notifications")
        .increment(count(report.notifications_scrubbed));
    metrics::counter!(RETENTION_PARTITIONS, "action" => "created")
        .increment(report.partitions_created.len() as u64);
    metrics::counter!(RETENTION_PARTITIONS, "action" => "dropped")
        .increment(report.partitions_dropped.len() as u64);
}

/// HELP text for every metric of the worker, and every counter at zero
/// (see `ledgerhook_runtime::telemetry::install_metrics_recorder`).
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_histogram!(
        PROCESSING,
        "Seconds from a delivery's arrival at the ingester to its effects committed, by outcome and provider"
    );
    describe_counter!(
        PROCESSED,
        "Deliveries processed, by outcome (granted, duplicate, conflict, recorded, ignored, reversed, already_processed, parked) and provider"
    );
    describe_counter!(GRANTS, "Credit grants committed, by provider");
    describe_counter!(CREDITS_GRANTED, "Credits added by grants, by provider");
    describe_counter!(
        DUPLICATE_ORDERS,
        "Payment events for orders already granted (granted once, never twice), by provider"
    );
    describe_counter!(
        CONFLICTS,
        "Events that contradict their order (amount, currency, user, package, provider), held for review"
    );
    describe_counter!(
        ANOMALIES,
        "Events that make no sense in their order's state (paid after cancel, ...), recorded"
    );
    describe_counter!(
        PAYMENTS,
        "Orders by how their payment ended, by provider and result (succeeded, failed, held, expired), once each"
    );
    describe_counter!(
        DEFERRED,
        "Messages set aside unprocessed while their provider is paused, by provider"
    );
    describe_counter!(
        RETRIES,
        "Processing attempts that will be retried, by reason"
    );
    describe_counter!(
        PARKED,
        "Messages given up on and parked for a person, by reason"
    );
    describe_counter!(
        CREDITS_EXPIRED,
        "Credits removed because they expired unspent"
    );
    describe_counter!(
        REVERSALS,
        "Refunds and chargebacks applied, by provider and kind"
    );
    describe_counter!(
        REVERSED_CREDITS,
        "Credits refunds and chargebacks took back (part=taken) or could not, already spent (part=shortfall), by kind"
    );
    describe_counter!(
        RECONCILED,
        "Orders reconcile asked Crossmint about, by result (recorded, already_recorded, not_paid, failed)"
    );
    describe_counter!(
        ORDERS_EXPIRED,
        "Orders marked expired, unpaid after PAYMENT_TIMEOUT_MINUTES"
    );
    describe_counter!(
        RETENTION_RUNS,
        "Retention runs, by result (done, skipped: another run held the lock, failed)"
    );
    describe_counter!(
        RETENTION_SCRUBBED,
        "Rows whose body and personal fields retention dropped (hash, ids and lineage kept), by table"
    );
    describe_counter!(
        RETENTION_PARTITIONS,
        "Monthly partitions of webhook_deliveries retention made ahead (created) or dropped once scrubbed (dropped)"
    );
    describe_gauge!(
        PAUSED,
        "1 while this worker is paused by the operator's switch and has left the broker"
    );
    describe_gauge!(
        REVOKE_SHORTFALL_ORDERS,
        "Orders whose revoke, refund or chargeback fell short (credits already spent)"
    );
    describe_gauge!(
        REVOKE_SHORTFALL_CREDITS,
        "Credits that could not be taken back because they were already spent"
    );

    for provider in PaymentProvider::ALL.map(PaymentProvider::as_str) {
        for outcome in Applied::OUTCOMES.into_iter().chain([PARKED_OUTCOME]) {
            metrics::counter!(PROCESSED, "outcome" => outcome, "provider" => provider).increment(0);
        }
        metrics::counter!(GRANTS, "provider" => provider).increment(0);
        metrics::counter!(CREDITS_GRANTED, "provider" => provider).increment(0);
        metrics::counter!(DUPLICATE_ORDERS, "provider" => provider).increment(0);
        for result in PAYMENT_RESULTS {
            metrics::counter!(PAYMENTS, "provider" => provider, "result" => result).increment(0);
        }
        for kind in ReversalKind::ALL.map(ReversalKind::as_str) {
            metrics::counter!(REVERSALS, "provider" => provider, "kind" => kind).increment(0);
        }
    }
    for kind in ReversalKind::ALL.map(ReversalKind::as_str) {
        for part in ["taken", "shortfall"] {
            metrics::counter!(REVERSED_CREDITS, "kind" => kind, "part" => part).increment(0);
        }
    }
    metrics::counter!(CONFLICTS).increment(0);
    metrics::counter!(ANOMALIES).increment(0);
    for reason in reason::RETRIED {
        metrics::counter!(RETRIES, "reason" => reason).increment(0);
    }
    for reason in reason::PARKED {
        metrics::counter!(PARKED, "reason" => reason).increment(0);
    }
    metrics::counter!(CREDITS_EXPIRED).increment(0);
    for result in FindingResult::ALL.map(FindingResult::as_str) {
        metrics::counter!(RECONCILED, "result" => result).increment(0);
    }
    metrics::counter!(ORDERS_EXPIRED).increment(0);
    for result in ["done", "skipped", "failed"] {
        metrics::counter!(RETENTION_RUNS, "result" => result).increment(0);
    }
    for table in ["webhook_deliveries", "notifications"] {
        metrics::counter!(RETENTION_SCRUBBED, "table" => table).increment(0);
    }
    for action in ["created", "dropped"] {
        metrics::counter!(RETENTION_PARTITIONS, "action" => action).increment(0);
    }
    paused(false);
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
