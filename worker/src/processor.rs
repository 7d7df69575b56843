//! What happens to messages: parse each once, apply them together in one
//! transaction, fall back to one transaction each (with retries while the
//! database is away) for those the batch could not settle, and say for each
//! whether to acknowledge, retry or park it. Acting on the verdicts is the
//! [`crate::settler::Settler`]'s job.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use backon::Retryable as _;
use ledgerhook_domain::Provider;
use ledgerhook_domain::{OrderEvent, PaymentEvent, PaymentReversal, SubscriptionChange};
use ledgerhook_runtime::retry::Backoff;
use ledgerhook_store::deliveries::attempts;
use ledgerhook_store::ledger::{self, Applied, ApplyError, Work};
use ledgerhook_store::{db, deliveries, subscriptions};

use crate::payment_lookup::PaymentLookup;
use sqlx::PgPool;
use tracing::{Instrument as _, Span};

use crate::metrics;
use crate::pause::HeldProviders;
use crate::settler::{Parked, Settlement};
use tokio::sync::watch;

/// First and longest wait between two attempts while the database is unreachable.
const DATABASE_RETRY_INITIAL: Duration = Duration::from_millis(100);
const MAX_RETRY_INTERVAL: Duration = Duration::from_secs(30);

/// What to do with the message after processing.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Its effects are committed (or it needed none): acknowledge.
    Done(&'static str),
    /// It may succeed later: retry it after the schedule's next wait.
    Retry { label: &'static str, reason: String },
    /// It can never succeed as it is: park it with a reason for a person.
    Park { label: &'static str, reason: String },
    /// Its provider is paused on its own: set it aside, unprocessed and
    /// without using an attempt, until the provider is resumed.
    Defer,
}

/// The parts of an AMQP message the processor needs.
pub struct Message<'a> {
    /// The sender's delivery id (the AMQP message id), for logs.
    pub delivery_id: Option<&'a str>,
    pub delivery_row: Option<i64>,
    /// Who sent it, read once from its header ([`Provider::from_label`]);
    /// the name, when this build does not know it.
    pub provider: Result<Provider, &'a str>,
    pub received_at_us: Option<i64>,
    pub body: &'a [u8],
    /// The exchange it was published to (`messaging.destination.name`).
    pub destination: &'a str,
    /// Whether its AMQP message carried it alone, or in a carrier with
    /// others (`ledgerhook_runtime::amqp::carrier`): a copy of it (a retry,
    /// a parking) is then made from its parts, not from the message.
    pub alone: bool,
    /// See [`Message::span`].
    pub span: OnceLock<Span>,
}

impl Message<'_> {
    /// The span every log line about this message is written in: its
    /// `delivery_id`, row and order, and OpenTelemetry's `messaging.*`
    /// attributes. A root span, so that a message's lines carry its own id
    /// (a batch's lines, in the batch's span, list them all).
    ///
    /// Created on first use, with `order_id` if the caller knows it: most
    /// messages are granted without a word, and a span per message costs a
    /// measurable share of the batch path at thousands of messages a second.
    pub fn span(&self, order_id: Option<&str>) -> &Span {
        self.span.get_or_init(|| {
            tracing::info_span!(
                parent: None,
                "message",
                delivery_id = self.delivery_id,
                delivery_row = self.delivery_row,
                order_id,
                messaging.system = "rabbitmq",
                messaging.operation.type = "process",
                messaging.destination.name = self.destination,
                messaging.message.id = self.delivery_id,
            )
        })
    }
}

#[derive(Clone)]
pub struct Processor {
    pub pool: PgPool,
    /// Credit validity for the orders the worker creates from metadata.
    pub terms: Arc<ledger::GrantTerms>,
    /// Asks the provider which order a payment paid, when none holds it.
    pub lookup: Option<PaymentLookup>,
    /// The providers the operator paused on their own
    /// ([`crate::pause::watch`]), read once per batch.
    pub held: watch::Receiver<HeldProviders>,
}

impl Processor {
    /// Processes messages and returns one verdict per message, in order.
    ///
    /// Each message is parsed once. All are applied in one transaction (the
    /// fast path: one statement per batch whatever its size); those the
    /// batch did not settle (an order not known yet, or a batch the database
    /// refused) are then applied one by one, each in its own transaction,
    /// retried in place while the database is unreachable.
    pub async fn process_batch(&self, messages: &[Message<'_>]) -> Vec<Verdict> {
        let mut verdicts: Vec<Option<Verdict>> = Vec::with_capacity(messages.len());
        let mut events = Vec::new();
        let mut reversals = Vec::new();
        let mut changes = Vec::new();
        let held = *self.held.borrow();
        for (index, message) in messages.iter().enumerate() {
            if let Ok(provider) = message.provider
                && held.holds(provider.payment_provider())
            {
                metrics::deferred(provider.payment_provider().as_str());
                verdicts.push(Some(Verdict::Defer));
                continue;
            }
            match prepare(message) {
                Ok((row, PaymentEvent::Order(event))) => {
                    events.push((index, row, event));
                    verdicts.push(None);
                }
                Ok((row, PaymentEvent::Reversal(reversal))) => {
                    reversals.push((index, row, reversal));
                    verdicts.push(None);
                }
                Ok((row, PaymentEvent::Subscription(change))) => {
                    changes.push((index, row, change));
                    verdicts.push(None);
                }
                Err(verdict) => verdicts.push(Some(verdict)),
            }
        }
        // Refunds and disputes: rare, each in a transaction of its own.
        for (index, row, reversal) in &reversals {
            let message = &messages[*index];
            let span = message.span(Some(&reversal.payment_intent)).clone();
            let verdict = self
                .apply_reversal(*row, reversal, message)
                .instrument(span)
                .await;
            verdicts[*index] = Some(verdict);
        }
        // Subscription changes: rarer still, each on its own too.
        for (index, row, change) in &changes {
            let message = &messages[*index];
            let span = message.span(Some(&change.subscription_id)).clone();
            let verdict = self
                .apply_subscription_change(*row, change, message)
                .instrument(span)
                .await;
            verdicts[*index] = Some(verdict);
        }
        if !events.is_empty() {
            self.apply_together(messages, &events, &mut verdicts).await;
        }
        // The rest, one by one.
        for (index, row, event) in &events {
            if verdicts[*index].is_none() {
                let message = &messages[*index];
                let span = message.span(Some(&event.order_id)).clone();
                let verdict = self
                    .apply_alone(*row, event, message)
                    .instrument(span)
                    .await;
                verdicts[*index] = Some(verdict);
            }
        }
        verdicts
            .into_iter()
            .map(|verdict| verdict.expect("every message has a verdict"))
            .collect()
    }

    /// Applies every parsed message in one transaction and fills in the
    /// verdicts of those it settled.
    async fn apply_together(
        &self,
        messages: &[Message<'_>],
        events: &[(usize, i64, OrderEvent)],
        verdicts: &mut [Option<Verdict>],
    ) {
        let work: Vec<Work<'_>> = events
            .iter()
            .map(|(_, delivery_row, event)| Work {
                delivery_row: *delivery_row,
                event,
            })
            .collect();
        match ledger::apply_batch(&self.pool, &work, &self.terms).await {
            Ok(results) => {
                for ((index, _, event), result) in events.iter().zip(results) {
                    if let Ok(applied) = result {
                        verdicts[*index] = Some(settled(&applied, event, &messages[*index]));
                    }
                }
            }
            Err(e) => {
                if db::is_transient(&e) {
                    metrics::retry(metrics::reason::DATABASE);
                }
                tracing::warn!(error = %e, count = work.len(), "batch not applied; processing its messages one by one");
            }
        }
    }

    /// Applies one parsed message in its own transaction, with retries.
    async fn apply_alone(&self, row: i64, event: &OrderEvent, message: &Message<'_>) -> Verdict {
        match self.apply_with_retries(row, event).await {
            Ok(applied) => settled(&applied, event, message),
            Err(ApplyError::OrderUnknown(order)) => Verdict::Retry {
                label: metrics::reason::ORDER_UNKNOWN,
                reason: format!(
                    "order {order:?} unknown and the event carries no usable userId/packageId"
                ),
            },
            Err(ApplyError::DeliveryMissing(row)) => Verdict::Park {
                label: metrics::reason::MALFORMED_MESSAGE,
                reason: format!("delivery row {row} does not exist"),
            },
            Err(ApplyError::UnknownPackage(package)) => Verdict::Park {
                label: metrics::reason::UNKNOWN_PACKAGE,
                reason: format!("order names unknown package {package:?}"),
            },
            Err(ApplyError::Database(e)) => Verdict::Park {
                label: metrics::reason::DATABASE_REFUSED,
                reason: format!("database refused the change: {e}"),
            },
        }
    }

    /// Applies a subscription's new state in its own transaction, with
    /// retries while the database is away.
    async fn apply_subscription_change(
        &self,
        row: i64,
        change: &SubscriptionChange,
        message: &Message<'_>,
    ) -> Verdict {
        let result =
            with_database_retries(|| subscriptions::apply_change(&self.pool, row, change)).await;
        let provider = message
            .provider
            .map_or("unknown", |p| p.payment_provider().as_str());
        match result {
            Ok(applied) => {
                record_metrics(&applied, provider, || message.span(None));
                metrics::processed(applied.outcome(), provider, since(message.received_at_us));
                Verdict::Done(applied.outcome())
            }
            Err(ApplyError::DeliveryMissing(row)) => Verdict::Park {
                label: metrics::reason::MALFORMED_MESSAGE,
                reason: format!("delivery row {row} does not exist"),
            },
            Err(e) => Verdict::Park {
                label: metrics::reason::DATABASE_REFUSED,
                reason: format!("subscription change not applied: {e}"),
            },
        }
    }

    /// Applies a refund or dispute in its own transaction, with retries
    /// while the database is away.
    async fn apply_reversal(
        &self,
        row: i64,
        reversal: &PaymentReversal,
        message: &Message<'_>,
    ) -> Verdict {
        let mut result =
            with_database_retries(|| ledger::apply_reversal(&self.pool, row, reversal)).await;
        // No order holds the payment: the provider may say which one it paid
        // (an invoice whose event listed no payments). Asked once.
        if let (Err(ApplyError::OrderUnknown(payment)), Some(lookup)) = (&result, &self.lookup)
            && let Some(order) = lookup.order_of(payment).await
            && ledger::orders::attach_payment(&self.pool, &order, payment)
                .await
                .unwrap_or(false)
        {
            result =
                with_database_retries(|| ledger::apply_reversal(&self.pool, row, reversal)).await;
        }
        match result {
            Ok(applied) => {
                let provider = message
                    .provider
                    .map_or("unknown", |p| p.payment_provider().as_str());
                record_metrics(&applied, provider, || message.span(None));
                metrics::processed(applied.outcome(), provider, since(message.received_at_us));
                Verdict::Done(applied.outcome())
            }
            // The payment it reverses is not applied yet (events arrive in
            // any order): wait for it like for an order not known yet.
            Err(ApplyError::OrderUnknown(intent)) => Verdict::Retry {
                label: metrics::reason::ORDER_UNKNOWN,
                reason: format!("no granted order holds payment {intent:?} yet"),
            },
            Err(ApplyError::DeliveryMissing(row)) => Verdict::Park {
                label: metrics::reason::MALFORMED_MESSAGE,
                reason: format!("delivery row {row} does not exist"),
            },
            Err(e) => Verdict::Park {
                label: metrics::reason::DATABASE_REFUSED,
                reason: format!("reversal not applied: {e}"),
            },
        }
    }

    /// Notes parked messages on their delivery rows (one statement), so an
    /// operator finds them in the database as well as in the parked queue.
    /// A failure costs only the note: the parked queue holds the messages.
    pub async fn note_parked(&self, parked: &[&Parked]) {
        if parked.is_empty() {
            return;
        }
        let (rows, reasons): (Vec<i64>, Vec<&str>) = parked
            .iter()
            .map(|p| (p.delivery_row, p.reason.as_str()))
            .unzip();
        if let Err(e) = deliveries::processing::mark_parked(&self.pool, &rows, &reasons).await {
            tracing::warn!(error = %e, count = rows.len(), "could not note parkings on their delivery rows");
        }
    }

    /// Notes the batch's failed attempts (retried or parked) in
    /// `delivery_attempts`, one statement, none when every message was
    /// done. A failure costs only the note, as for [`Self::note_parked`].
    pub async fn note_attempts(&self, settlements: &[Settlement]) {
        let failed: Vec<attempts::Failed<'_>> = settlements
            .iter()
            .filter_map(|settlement| {
                let (failed, parked) = match settlement {
                    Settlement::Retried(failed) => (failed, false),
                    Settlement::Parked(failed) => (failed, true),
                    Settlement::Ack | Settlement::Return => return None,
                };
                Some(attempts::Failed {
                    delivery_row: failed.delivery_row,
                    attempt: i32::try_from(failed.attempt).unwrap_or(i32::MAX),
                    parked,
                    reason: &failed.reason,
                    retry_in_ms: failed
                        .retry_in
                        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
                })
            })
            .collect();
        if failed.is_empty() {
            return;
        }
        if let Err(e) = attempts::record(&self.pool, &failed).await {
            tracing::warn!(error = %e, count = failed.len(), "could not note failed attempts");
        }
    }

    async fn apply_with_retries(
        &self,
        row: i64,
        event: &OrderEvent,
    ) -> Result<Applied, ApplyError> {
        with_database_retries(|| ledger::apply_event(&self.pool, row, event, &self.terms)).await
    }
}

/// Retries `apply` in place, with exponential backoff and jitter, without
/// limit while the database is unreachable: the message is safe in the
/// queue, holding it keeps this worker from taking more, and the database
/// alert pages a person. Any other error is returned at once.
async fn with_database_retries<Fut>(apply: impl FnMut() -> Fut) -> Result<Applied, ApplyError>
where
    Fut: Future<Output = Result<Applied, ApplyError>>,
{
    apply
        .retry(Backoff::new(DATABASE_RETRY_INITIAL, MAX_RETRY_INTERVAL))
        .sleep(backon::TokioSleeper)
        .when(|e| matches!(e, ApplyError::Database(e) if db::is_transient(e)))
        .notify(|e, _| {
            tracing::warn!(error = %e, "database unavailable; will retry");
            metrics::retry(metrics::reason::DATABASE);
        })
        .await
}

/// The delivery row and what its body says, or the reason to park the
/// message.
fn prepare(message: &Message<'_>) -> Result<(i64, PaymentEvent), Verdict> {
    let Some(row) = message.delivery_row else {
        return Err(Verdict::Park {
            label: metrics::reason::MALFORMED_MESSAGE,
            reason: "message has no delivery row header".into(),
        });
    };
    let provider = message.provider.map_err(|name| Verdict::Park {
        label: metrics::reason::UNKNOWN_PROVIDER,
        reason: format!("message from provider {name:?}, which this worker cannot read"),
    })?;
    ledgerhook_providers::parse(provider, message.body)
        .map(|parsed| (row, parsed))
        .map_err(|e| Verdict::Park {
            label: metrics::reason::UNPARSEABLE,
            reason: e.to_string(),
        })
}

/// Metrics for a committed outcome, and the verdict to acknowledge it.
fn settled(applied: &Applied, event: &OrderEvent, message: &Message<'_>) -> Verdict {
    let outcome = applied.outcome();
    let provider = event.provider.as_str();
    record_metrics(applied, provider, || message.span(Some(&event.order_id)));
    // Orders, not events: a duplicate or a resent failure counts nothing.
    if let Some(result) = applied.payment_outcome() {
        metrics::payments(provider, result, 1);
    }
    metrics::processed(outcome, provider, since(message.received_at_us));
    Verdict::Done(outcome)
}

/// Counts what was applied, by the provider that took the payment, and
/// says what needs a person's eye in the message's span (created only then).
fn record_metrics<'s>(applied: &Applied, provider: &'static str, span: impl FnOnce() -> &'s Span) {
    match applied {
        Applied::Granted {
            credits, anomaly, ..
        } => {
            metrics::granted(provider, *credits);
            if let Some(anomaly) = anomaly {
                span().in_scope(|| tracing::warn!(anomaly, "order anomaly recorded"));
                metrics::anomaly();
            }
        }
        Applied::DuplicateOrder => metrics::duplicate_order(provider),
        Applied::Conflict { reason, .. } => {
            span().in_scope(|| tracing::warn!(reason, "order conflict held for review"));
            metrics::conflict();
        }
        Applied::Recorded {
            anomaly: Some(anomaly),
            ..
        } => {
            span().in_scope(|| tracing::warn!(anomaly, "order anomaly recorded"));
            metrics::anomaly();
        }
        Applied::Reversed {
            kind,
            taken,
            shortfall,
            first_of_order,
            ..
        } => {
            if *shortfall > 0 {
                span().in_scope(|| {
                    tracing::warn!(
                        kind = kind.as_str(),
                        taken,
                        shortfall,
                        "credits already spent could not be taken back"
                    );
                });
            }
            metrics::reversed(provider, kind.as_str(), *taken, *shortfall, *first_of_order);
        }
        Applied::Recorded { anomaly: None, .. }
        | Applied::Ignored { .. }
        | Applied::AlreadyProcessed => {}
    }
}

/// Time since the ingester received the delivery, if it said when.
fn since(received_at_us: Option<i64>) -> Option<Duration> {
    let received = u64::try_from(received_at_us?).ok()?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
    now.checked_sub(Duration::from_micros(received))
}
