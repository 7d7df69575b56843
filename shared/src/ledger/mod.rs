//! Applying order events to the ledger, exactly once, in one transaction.
//!
//! This is the storage interface the worker sees: [`apply_batch`] takes
//! recorded deliveries with their parsed events and commits everything they
//! mean (order status, history, events, ledger entry, balance, each
//! delivery's outcome) in one transaction, or nothing. Three guards make a
//! second grant impossible, each enforced by PostgreSQL:
//! 1. each write statement also sets its delivery's `processed_at` where it
//!    is still null, and writes nothing otherwise, so a message processed
//!    twice (a redelivery after a crash between commit and ack, or a
//!    duplicate publish) changes nothing the second time;
//! 2. the order row is locked (`for update`) while the state machine decides,
//!    so different deliveries about one order are serialised, and a decision
//!    is always made on the order's latest committed state;
//! 3. `credit_ledger_one_grant_per_order` refuses a second grant row.
//!
//! Batching several deliveries into one transaction shares the commit and
//! the round trips; orders are locked in a fixed order (by order id) so that
//! concurrent batches cannot deadlock.

mod orders;
mod writes;

use sqlx::{PgConnection, PgPool};

use crate::domain::{Decision, EventKind, OrderEvent, OrderFacts, decide, find_package};

pub use orders::StoredOrder;

/// What applying an event did; the worker turns it into metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// This delivery was already processed (a redelivered message).
    AlreadyProcessed,
    Granted { user_id: String, credits: i64 },
    /// A grant-triggering event for an order already granted.
    DuplicateOrder,
    /// The event contradicts the order; held for review, nothing granted.
    Conflict { reason: String },
    /// Recorded on the order, possibly with a status change; `anomaly` when
    /// the event made no sense in the order's state.
    Recorded { anomaly: Option<&'static str> },
    /// Nothing to apply it to (an unknown event type, or a non-payment event
    /// for an order we do not know); the delivery is marked and kept.
    Ignored { reason: &'static str },
}

impl Applied {
    /// The value stored in `webhook_deliveries.outcome`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::AlreadyProcessed => "already_processed",
            Self::Granted { .. } => "granted",
            Self::DuplicateOrder => "duplicate",
            Self::Conflict { .. } => "conflict",
            Self::Recorded { .. } => "recorded",
            Self::Ignored { .. } => "ignored",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A payment for an order we cannot attribute to a user and package
    /// (no row created before payment, no usable metadata). It may appear
    /// shortly (the API commits its order row late), so this is retried.
    #[error("order {0:?} is unknown and the event carries no usable userId/packageId")]
    OrderUnknown(String),
    /// The message names a delivery row that does not exist.
    #[error("delivery row {0} does not exist")]
    DeliveryMissing(i64),
    /// The stored order names a package the catalogue no longer has.
    #[error("order names unknown package {0:?}")]
    UnknownPackage(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// One delivery to apply: its row in `webhook_deliveries` and its event.
#[derive(Debug, Clone, Copy)]
pub struct Work<'a> {
    pub delivery_row: i64,
    pub event: &'a OrderEvent,
}

/// Applies one event in its own transaction.
pub async fn apply_event(pool: &PgPool, delivery_row: i64, event: &OrderEvent) -> Result<Applied, ApplyError> {
    let results = apply_batch(pool, &[Work { delivery_row, event }]).await?;
    results.into_iter().next().expect("one result per work item")
}

/// Applies every item in one transaction and returns one result per item,
/// in the given order. An item that cannot be applied (order unknown, ...)
/// gets its error and leaves no trace; the others still commit. A database
/// error fails the whole batch and nothing is committed.
pub async fn apply_batch(pool: &PgPool, work: &[Work<'_>]) -> Result<Vec<Result<Applied, ApplyError>>, sqlx::Error> {
    let mut order: Vec<usize> = (0..work.len()).collect();
    order.sort_by(|&a, &b| {
        (&work[a].event.order_id, work[a].delivery_row).cmp(&(&work[b].event.order_id, work[b].delivery_row))
    });
    let mut results: Vec<Option<Result<Applied, ApplyError>>> = (0..work.len()).map(|_| None).collect();
    let mut tx = pool.begin().await?;
    for index in order {
        let result = match apply_one(&mut tx, work[index]).await {
            Err(ApplyError::Database(e)) => return Err(e),
            other => other,
        };
        results[index] = Some(result);
    }
    tx.commit().await?;
    Ok(results.into_iter().map(|r| r.expect("every item was applied")).collect())
}

async fn apply_one(tx: &mut PgConnection, work: Work<'_>) -> Result<Applied, ApplyError> {
    let Work { delivery_row, event } = work;
    if event.kind == EventKind::Unknown {
        let applied = Applied::Ignored {
            reason: "unknown event type",
        };
        return writes::finish_unattached(tx, delivery_row, applied).await;
    }
    let Some(order) = orders::find_or_create_locked(tx, event).await? else {
        if event.kind == EventKind::PaymentSucceeded {
            return Err(ApplyError::OrderUnknown(event.order_id.clone()));
        }
        let applied = Applied::Ignored {
            reason: "event for an unknown order",
        };
        return writes::finish_unattached(tx, delivery_row, applied).await;
    };
    let package = find_package(&order.package_id).ok_or_else(|| ApplyError::UnknownPackage(order.package_id.clone()))?;
    let facts = OrderFacts {
        status: order.status,
        user_id: &order.user_id,
        package,
        under_review: order.review_reason.is_some(),
    };
    let decision = decide(&facts, event);
    let applied = match &decision {
        Decision::Grant { credits, .. } => Applied::Granted {
            user_id: order.user_id.clone(),
            credits: *credits,
        },
        Decision::Duplicate => Applied::DuplicateOrder,
        Decision::Conflict { reason } => Applied::Conflict { reason: reason.clone() },
        Decision::Transition { .. } => Applied::Recorded { anomaly: None },
        Decision::Record { anomaly } => Applied::Recorded { anomaly: *anomaly },
    };
    writes::apply_decision(tx, delivery_row, &order, event, &decision, applied).await
}

/// Marks a delivery the worker gave up on, with the reason, so an operator
/// finds it in the database as well as in the parked queue.
pub async fn mark_parked(pool: &PgPool, delivery_row: i64, reason: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update webhook_deliveries
         set processed_at = coalesce(processed_at, now()), outcome = 'parked', outcome_detail = $2
         where id = $1 and (outcome is null or outcome = 'parked')",
    )
    .bind(delivery_row)
    .bind(reason)
    .execute(pool)
    .await?;
    Ok(())
}
