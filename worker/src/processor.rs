//! What happens to one message: parse, apply in one transaction with
//! retries, and decide whether to acknowledge or park it.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use backoff::ExponentialBackoff;
use ledgerhook_shared::db;
use ledgerhook_shared::domain::{CreditTerms, EventKind, OrderEvent};
use ledgerhook_shared::ledger::{self, Applied, ApplyError, Work};
use sqlx::PgPool;

use crate::metrics;

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
}

/// The parts of an AMQP message the processor needs.
pub struct Message<'a> {
    /// The sender's delivery id (the AMQP message id), for logs.
    pub delivery_id: Option<&'a str>,
    pub delivery_row: Option<i64>,
    pub received_at_us: Option<i64>,
    pub body: &'a [u8],
}

#[derive(Clone)]
pub struct Processor {
    pub pool: PgPool,
    /// Credit validity for the orders the worker creates from metadata.
    pub terms: Arc<CreditTerms>,
}

impl Processor {
    /// Processes several messages in one transaction. Returns a verdict for
    /// each message that is settled; `None` for those that need the
    /// one-by-one path (an order not known yet, or a batch the database
    /// refused), which the caller runs with [`Processor::process`].
    pub async fn process_batch(&self, messages: &[Message<'_>]) -> Vec<Option<Verdict>> {
        let mut verdicts: Vec<Option<Verdict>> = Vec::with_capacity(messages.len());
        let mut events = Vec::new();
        for (index, message) in messages.iter().enumerate() {
            match prepare(message) {
                Ok((row, event)) => {
                    events.push((index, row, event));
                    verdicts.push(None);
                }
                Err(verdict) => verdicts.push(Some(verdict)),
            }
        }
        if events.is_empty() {
            return verdicts;
        }
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
                        verdicts[*index] = Some(settled(
                            &applied,
                            event.kind,
                            messages[*index].received_at_us,
                        ));
                    }
                }
            }
            Err(e) => {
                if db::is_transient(&e) {
                    metrics::retry("database");
                }
                tracing::warn!(error = %e, count = work.len(), "batch not applied; processing its messages one by one");
            }
        }
        verdicts
    }

    /// Processes one message in its own transaction, with retries.
    #[tracing::instrument(skip_all, fields(delivery_id = message.delivery_id, delivery_row = message.delivery_row, order_id))]
    pub async fn process(&self, message: &Message<'_>) -> Verdict {
        let (row, event) = match prepare(message) {
            Ok(prepared) => prepared,
            Err(verdict) => return verdict,
        };
        tracing::Span::current().record("order_id", event.order_id.as_str());
        match self.apply_with_retries(row, &event).await {
            Ok(applied) => settled(&applied, event.kind, message.received_at_us),
            Err(ApplyError::OrderUnknown(order)) => Verdict::Retry {
                label: "order_unknown",
                reason: format!(
                    "order {order:?} unknown and the event carries no usable userId/packageId"
                ),
            },
            Err(ApplyError::DeliveryMissing(row)) => Verdict::Park {
                label: "malformed_message",
                reason: format!("delivery row {row} does not exist"),
            },
            Err(ApplyError::UnknownPackage(package)) => Verdict::Park {
                label: "unknown_package",
                reason: format!("order names unknown package {package:?}"),
            },
            Err(ApplyError::Database(e)) => Verdict::Park {
                label: "database_refused",
                reason: format!("database refused the change: {e}"),
            },
        }
    }

    /// Retries in place, with exponential backoff and jitter, without limit
    /// while the database is unreachable: the message is safe in the queue,
    /// holding it keeps this worker from taking more, and the database alert
    /// pages a person.
    async fn apply_with_retries(
        &self,
        row: i64,
        event: &OrderEvent,
    ) -> Result<Applied, ApplyError> {
        let schedule = ExponentialBackoff {
            initial_interval: DATABASE_RETRY_INITIAL,
            current_interval: DATABASE_RETRY_INITIAL,
            multiplier: 2.0,
            randomization_factor: 0.1,
            max_interval: MAX_RETRY_INTERVAL,
            max_elapsed_time: None,
            ..ExponentialBackoff::default()
        };
        backoff::future::retry(schedule, || async {
            match ledger::apply_event(&self.pool, row, event, &self.terms).await {
                Ok(applied) => Ok(applied),
                Err(ApplyError::Database(e)) if db::is_transient(&e) => {
                    tracing::warn!(error = %e, "database unavailable; will retry");
                    metrics::retry("database");
                    Err(backoff::Error::transient(ApplyError::Database(e)))
                }
                Err(e) => Err(backoff::Error::permanent(e)),
            }
        })
        .await
    }
}

/// The delivery row and parsed event, or the reason to park the message.
fn prepare(message: &Message<'_>) -> Result<(i64, OrderEvent), Verdict> {
    let Some(row) = message.delivery_row else {
        return Err(Verdict::Park {
            label: "malformed_message",
            reason: "message has no delivery row header".into(),
        });
    };
    OrderEvent::parse(message.body)
        .map(|event| (row, event))
        .map_err(|e| Verdict::Park {
            label: "unparseable",
            reason: e.to_string(),
        })
}

/// Metrics for a committed outcome, and the verdict to acknowledge it.
fn settled(applied: &Applied, kind: EventKind, received_at_us: Option<i64>) -> Verdict {
    let outcome = applied.outcome();
    record_metrics(applied);
    if *applied != Applied::AlreadyProcessed {
        match kind {
            EventKind::PaymentSucceeded => metrics::payment("succeeded"),
            EventKind::PaymentFailed => metrics::payment("failed"),
            _ => {}
        }
    }
    metrics::processed(outcome, since(received_at_us));
    Verdict::Done(outcome)
}

fn record_metrics(applied: &Applied) {
    match applied {
        Applied::Granted {
            credits, anomaly, ..
        } => {
            metrics::granted(*credits);
            if let Some(anomaly) = anomaly {
                tracing::warn!(anomaly, "order anomaly recorded");
                metrics::anomaly();
            }
        }
        Applied::DuplicateOrder => metrics::duplicate_order(),
        Applied::Conflict { reason } => {
            tracing::warn!(reason, "order conflict held for review");
            metrics::conflict();
        }
        Applied::Recorded {
            anomaly: Some(anomaly),
        } => {
            tracing::warn!(anomaly, "order anomaly recorded");
            metrics::anomaly();
        }
        Applied::Recorded { anomaly: None }
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
