//! Applying one order event to the ledger, exactly once, in one transaction.
//!
//! This is the storage interface the worker sees: [`apply_event`] takes a
//! recorded delivery and its parsed event and either commits everything the
//! event means (order status, history, events, ledger entry, balance, the
//! delivery's outcome) or nothing. Three guards make a second grant
//! impossible, each enforced by PostgreSQL:
//! 1. the delivery row is locked and its `processed_at` checked, and set in
//!    the same transaction, so the same message processed twice (a
//!    redelivery after a crash between commit and ack, or two workers) is
//!    recognised and changes nothing;
//! 2. the order row is locked while the state machine decides, so different
//!    deliveries about one order are serialised;
//! 3. `credit_ledger_one_grant_per_order` refuses a second grant row.

mod orders;
mod writes;

use sqlx::PgPool;

use crate::domain::{Decision, EventKind, OrderEvent, OrderFacts, decide, find_package};

pub use orders::StoredOrder;

/// What applying an event did; the worker turns it into metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// This delivery was already processed (a redelivered message).
    AlreadyProcessed,
    Granted {
        user_id: String,
        credits: i64,
    },
    /// A grant-triggering event for an order already granted.
    DuplicateOrder,
    /// The event contradicts the order; held for review, nothing granted.
    Conflict {
        reason: String,
    },
    /// Recorded on the order, possibly with a status change; `anomaly` when
    /// the event made no sense in the order's state.
    Recorded {
        anomaly: Option<&'static str>,
    },
    /// Nothing to apply it to (an unknown event type, or a non-payment event
    /// for an order we do not know); the delivery is marked and kept.
    Ignored {
        reason: &'static str,
    },
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

/// Applies `event`, parsed from delivery `delivery_row`, in one transaction.
pub async fn apply_event(
    pool: &PgPool,
    delivery_row: i64,
    event: &OrderEvent,
) -> Result<Applied, ApplyError> {
    let mut tx = pool.begin().await?;
    match writes::claim_delivery(&mut tx, delivery_row).await? {
        writes::Claim::Fresh => {}
        writes::Claim::AlreadyProcessed => {
            tx.rollback().await?;
            return Ok(Applied::AlreadyProcessed);
        }
        writes::Claim::Missing => return Err(ApplyError::DeliveryMissing(delivery_row)),
    }
    if event.kind == EventKind::Unknown {
        let applied = Applied::Ignored {
            reason: "unknown event type",
        };
        writes::set_outcome(&mut tx, delivery_row, &applied).await?;
        tx.commit().await?;
        return Ok(applied);
    }

    let Some(order) = orders::find_or_create_locked(&mut tx, event).await? else {
        if event.kind == EventKind::PaymentSucceeded {
            return Err(ApplyError::OrderUnknown(event.order_id.clone()));
        }
        let applied = Applied::Ignored {
            reason: "event for an unknown order",
        };
        writes::set_outcome(&mut tx, delivery_row, &applied).await?;
        tx.commit().await?;
        return Ok(applied);
    };
    let package = find_package(&order.package_id)
        .ok_or_else(|| ApplyError::UnknownPackage(order.package_id.clone()))?;
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
        Decision::Conflict { reason } => Applied::Conflict {
            reason: reason.clone(),
        },
        Decision::Transition { .. } => Applied::Recorded { anomaly: None },
        Decision::Record { anomaly } => Applied::Recorded { anomaly: *anomaly },
    };
    writes::apply_decision(&mut tx, delivery_row, &order, event, &decision, &applied).await?;
    tx.commit().await?;
    Ok(applied)
}

/// Marks a delivery the worker gave up on, with the reason, so an operator
/// finds it in the database as well as in the parked queue.
pub async fn mark_parked(
    pool: &PgPool,
    delivery_row: i64,
    reason: &str,
) -> Result<(), sqlx::Error> {
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
