//! Reconcile: the "query Crossmint's order status" runbook (risk 2, a
//! webhook that never came). For each order still waiting for its payment
//! past an age, ask Crossmint; if it says the payment completed, record its
//! answer as a delivery (exact bytes, provider `reconcile`, delivery id
//! `reconcile:<order id>`) and publish it to the work queue, so the worker
//! applies it through the same state machine and ledger guards as a
//! webhook. It grants once whichever comes first; the webhook arriving
//! later is a duplicate like any other.
//!
//! Safe to run from many places at once: the delivery id is unique per
//! order, so a second run records nothing new for an order already
//! reconciled. Run on demand (`ledgerhook-admin reconcile`) and on a
//! schedule in the worker (`RECONCILE_INTERVAL_SECS`).

pub mod job;
pub mod stripe;

use std::time::Duration;

use chrono::Utc;
use lapin::Channel;
use ledgerhook_domain::{Delivery, EventKind, PaymentProvider, Provider};
use ledgerhook_providers::crossmint::order_answer;
use ledgerhook_runtime::amqp::{self, Topology};
use ledgerhook_store::deliveries::{self, record::NewDelivery};
use ledgerhook_store::ledger::orders::{self, AwaitingPayment};
use serde::Serialize;
use sqlx::PgPool;

use ledgerhook_providers::crossmint::OrdersApi;

/// What `verified_by` says for a reconciled delivery: there is no signature;
/// the answer came over TLS from Crossmint's API, asked with our key.
const VERIFIED_BY: &str = "crossmint-orders-api";
/// Orders older than this are not asked about (the payment timeout is
/// 30 minutes; a week covers any outage of webhooks worth reconciling).
pub const DEFAULT_WITHIN: Duration = Duration::from_secs(7 * 24 * 3600);
/// The most orders asked about in one run.
pub const DEFAULT_LIMIT: i64 = 500;

/// Which orders to ask about.
#[derive(Debug, Clone, Copy)]
pub struct Scope {
    /// Only orders created at least this long ago (webhooks normally come
    /// within seconds; give them time).
    pub older_than: Duration,
    /// Only orders created within this long.
    pub within: Duration,
    pub limit: i64,
}

/// What else narrows a run: one order only, or asking without recording.
#[derive(Debug, Clone, Copy, Default)]
pub struct Only<'a> {
    /// Only this order (its provider's id).
    pub order: Option<&'a str>,
    /// Ask and report, record nothing.
    pub dry_run: bool,
}

/// What reconcile found about one order.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Whose order: `crossmint` or `stripe`.
    pub provider: &'static str,
    pub order_id: uuid::Uuid,
    pub provider_order_id: String,
    pub user_id: String,
    pub package_id: String,
    /// Our status before this run (`pending` or `expired`).
    pub status: String,
    pub created_at: chrono::DateTime<Utc>,
    /// Crossmint's `payment.status`, when it answered.
    pub crossmint_payment_status: Option<String>,
    /// Stripe's Checkout Session `payment_status`, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stripe_payment_status: Option<String>,
    pub result: FindingResult,
    /// Why, when the lookup failed or the answer could not be read.
    pub detail: Option<String>,
}

impl Finding {
    /// What is known of `order` before its provider is asked: nothing yet,
    /// so `failed` until an answer says otherwise.
    pub(crate) fn about(provider: PaymentProvider, order: AwaitingPayment) -> Self {
        Self {
            provider: provider.as_str(),
            order_id: order.id,
            provider_order_id: order.provider_order_id,
            user_id: order.user_id,
            package_id: order.package_id,
            status: order.status,
            created_at: order.created_at,
            crossmint_payment_status: None,
            stripe_payment_status: None,
            result: FindingResult::Failed,
            detail: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingResult {
    /// Paid: recorded as a delivery and sent to the workers.
    Recorded,
    /// Paid, and an earlier run had recorded it already.
    AlreadyRecorded,
    /// Paid, and not recorded yet: a dry run stops there.
    WouldRecord,
    /// Crossmint says it is not paid (yet).
    NotPaid,
    /// Crossmint could not be asked or its answer not read; try again later.
    Failed,
}

impl FindingResult {
    pub const ALL: [Self; 5] = [
        Self::Recorded,
        Self::AlreadyRecorded,
        Self::WouldRecord,
        Self::NotPaid,
        Self::Failed,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recorded => "recorded",
            Self::AlreadyRecorded => "already_recorded",
            Self::WouldRecord => "would_record",
            Self::NotPaid => "not_paid",
            Self::Failed => "failed",
        }
    }
}

/// One run: the findings about orders and (Stripe) about undelivered
/// events, and the deliveries it recorded (to publish).
#[derive(Default)]
pub struct Run {
    pub findings: Vec<Finding>,
    pub events: Vec<stripe::EventFinding>,
    /// Why the undelivered events could not be listed, if they could not.
    pub events_error: Option<String>,
    pub recorded: Vec<Delivery>,
}

/// Asks Crossmint about every order in `scope` and records the paid ones.
/// Lookups are one at a time: reconcile is for the few orders whose webhook
/// went missing, and Crossmint's rate limits matter more than speed.
pub async fn run(
    pool: &PgPool,
    crossmint: &OrdersApi,
    scope: Scope,
    only: Only<'_>,
) -> Result<Run, sqlx::Error> {
    let candidates = orders::awaiting_payment(
        pool,
        PaymentProvider::Crossmint,
        scope.older_than,
        scope.within,
        scope.limit,
        only.order,
    )
    .await?;
    let mut run = Run::default();
    for order in candidates {
        let finding =
            reconcile_one(pool, crossmint, order, only.dry_run, &mut run.recorded).await?;
        run.findings.push(finding);
    }
    Ok(run)
}

async fn reconcile_one(
    pool: &PgPool,
    crossmint: &OrdersApi,
    order: AwaitingPayment,
    dry_run: bool,
    recorded: &mut Vec<Delivery>,
) -> Result<Finding, sqlx::Error> {
    let mut finding = Finding::about(PaymentProvider::Crossmint, order);
    let answer = match crossmint.get_order(&finding.provider_order_id).await {
        Ok(answer) => answer,
        Err(e) => {
            finding.detail = Some(format!("{e:#}"));
            return Ok(finding);
        }
    };
    let event = match order_answer::parse(&answer.body) {
        Ok(event) => event,
        Err(e) => {
            finding.detail = Some(format!("Crossmint's answer could not be read: {e}"));
            return Ok(finding);
        }
    };
    finding.crossmint_payment_status = serde_json::from_slice::<serde_json::Value>(&answer.body)
        .ok()
        .and_then(|order| order_answer::payment_status(&order).map(str::to_owned));
    if event.order_id != finding.provider_order_id {
        finding.detail = Some(format!(
            "Crossmint answered about another order ({:?})",
            event.order_id
        ));
        return Ok(finding);
    }
    if event.kind != EventKind::PaymentSucceeded {
        finding.result = FindingResult::NotPaid;
        return Ok(finding);
    }
    let delivery_id = format!("reconcile:{}", finding.provider_order_id);
    finding.result = record(
        pool,
        Recording {
            provider: Provider::Reconcile,
            delivery_id,
            body: answer.body.to_vec(),
            headers: answer.headers.to_string(),
            verified_by: VERIFIED_BY,
        },
        dry_run,
        recorded,
    )
    .await?;
    Ok(finding)
}

/// A provider's answer to record as a delivery.
pub(crate) struct Recording {
    pub provider: Provider,
    pub delivery_id: String,
    pub body: Vec<u8>,
    pub headers: String,
    pub verified_by: &'static str,
}

/// Records `recording` as a delivery through the same insert as a webhook
/// (a second run, or the webhook itself, finds it recorded), or in a dry
/// run only says whether it would.
pub(crate) async fn record(
    pool: &PgPool,
    recording: Recording,
    dry_run: bool,
    recorded: &mut Vec<Delivery>,
) -> Result<FindingResult, sqlx::Error> {
    if dry_run {
        let known =
            deliveries::operator::find_by(pool, recording.provider, &recording.delivery_id).await?;
        return Ok(if known {
            FindingResult::AlreadyRecorded
        } else {
            FindingResult::WouldRecord
        });
    }
    let now = Utc::now();
    let rows = deliveries::record::record_batch(
        pool,
        recording.provider.as_str(),
        &[NewDelivery {
            delivery_id: &recording.delivery_id,
            body: &recording.body,
            headers: recording.headers,
            signed_at: now,
            received_at: now,
            verified_by: recording.verified_by,
        }],
    )
    .await?;
    Ok(match rows.first().copied().flatten() {
        Some(row) => {
            recorded.push(Delivery {
                row,
                provider: recording.provider,
                delivery_id: recording.delivery_id,
                received_at: now,
                body: recording.body.into(),
            });
            FindingResult::Recorded
        }
        None => FindingResult::AlreadyRecorded,
    })
}

/// Publishes recorded deliveries with confirms and clears their outbox
/// rows. One that is not confirmed stays in the outbox, where the
/// ingester's relay publishes it later: recorded is never lost.
pub async fn publish(
    pool: &PgPool,
    channel: &Channel,
    topology: &Topology,
    recorded: &[Delivery],
) -> anyhow::Result<()> {
    let mut confirmed = Vec::with_capacity(recorded.len());
    for delivery in recorded {
        match amqp::publish_delivery_confirmed(channel, topology, delivery).await {
            Ok(()) => confirmed.push(delivery.row),
            Err(e) => tracing::warn!(
                delivery_id = %delivery.delivery_id,
                error = %e,
                "the broker did not take a reconciled delivery; the outbox relay will send it"
            ),
        }
    }
    deliveries::outbox::mark_published(pool, &confirmed).await?;
    Ok(())
}
