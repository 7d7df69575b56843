//! Applying order events to the ledger, exactly once, in one transaction.
//!
//! This is the storage interface the worker sees: [`apply_batch`] takes
//! recorded deliveries with their parsed events and commits everything they
//! mean (order status, history, events, ledger entry, balance, each
//! delivery's outcome) in one transaction, or nothing. Three guards make a
//! second grant impossible, each enforced by PostgreSQL:
//! 1. the delivery rows are locked and only those still unprocessed are
//!    applied, setting `processed_at` in the same transaction, so a message
//!    processed twice (a redelivery after a crash between commit and ack, or
//!    a duplicate publish) changes nothing the second time;
//! 2. the order row is locked (`for update`) while the state machine decides,
//!    so different deliveries about one order are serialised, and a decision
//!    is always made on the order's latest committed state;
//! 3. `credit_ledger_one_grant_per_order` refuses a second grant row.
//!
//! A grant also writes its notifications (`crate::notifications`), in the
//! same statement as the ledger row, one per configured channel; sending
//! them is another process's work, so they cost the grant nothing else.
//!
//! A batch of deliveries is one transaction of four statements whatever its
//! size; rows are locked in a fixed order (deliveries by id, orders by order
//! id, balances by user) so that concurrent batches do not deadlock.

pub mod erasure;
pub mod inspect;
pub mod orders;
mod reversals;
pub mod review;
pub(crate) mod writes;

use sqlx::PgPool;

use crate::deliveries;
use ledgerhook_domain::NotifyChannels;
use ledgerhook_domain::{
    CreditTerms, Decision, EventKind, OrderEvent, OrderFacts, OrderStatus, ReversalKind, decide,
    find_bought,
};

pub use orders::StoredOrder;
pub use reversals::apply_reversal;

/// What applying an event did; the worker turns it into metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// This delivery was already processed (a redelivered message).
    AlreadyProcessed,
    Granted {
        user_id: String,
        credits: i64,
        /// Set when the grant overrides an earlier failed or cancelled state.
        anomaly: Option<&'static str>,
    },
    /// A grant-triggering event for an order already granted.
    DuplicateOrder,
    /// The event contradicts the order; held for review, nothing granted.
    /// `newly_held` when this put the order on hold (it was not before).
    Conflict { reason: String, newly_held: bool },
    /// Recorded on the order, possibly with a status change; `anomaly` when
    /// the event made no sense in the order's state; `payment_failed` when
    /// it moved the order to failed.
    Recorded {
        anomaly: Option<&'static str>,
        payment_failed: bool,
    },
    /// Nothing to apply it to (an unknown event type, or a non-payment event
    /// for an order we do not know); the delivery is marked and kept.
    Ignored { reason: &'static str },
    /// A refund or dispute took back credits (`taken`), or recorded what it
    /// could not take because it was spent (`shortfall`).
    Reversed {
        kind: ReversalKind,
        user_id: String,
        taken: i64,
        shortfall: i64,
        /// The order's first reversal of this kind (a second partial
        /// refund is not a second refunded order).
        first_of_order: bool,
    },
}

impl Applied {
    /// The value stored in `webhook_deliveries.outcome`.
    /// Every [`Self::outcome`], so each can be counted from zero.
    pub const OUTCOMES: [&'static str; 7] = [
        "already_processed",
        "granted",
        "duplicate",
        "conflict",
        "recorded",
        "ignored",
        "reversed",
    ];

    /// What this did to its order's payment, counted once per order: the
    /// payment success rate's `result` (`succeeded`, `failed`, `held`; the
    /// expiry job counts `expired`). A duplicate, a repeated failure or a
    /// second contradicting event changes nothing and counts nothing.
    pub fn payment_outcome(&self) -> Option<&'static str> {
        match self {
            Self::Granted { .. } => Some("succeeded"),
            Self::Recorded {
                payment_failed: true,
                ..
            } => Some("failed"),
            Self::Conflict {
                newly_held: true, ..
            } => Some("held"),
            _ => None,
        }
    }

    pub fn outcome(&self) -> &'static str {
        match self {
            Self::AlreadyProcessed => "already_processed",
            Self::Granted { .. } => "granted",
            Self::DuplicateOrder => "duplicate",
            Self::Conflict { .. } => "conflict",
            Self::Recorded { .. } => "recorded",
            Self::Ignored { .. } => "ignored",
            Self::Reversed { .. } => "reversed",
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

/// What a grant comes with besides its credits: how long orders created
/// from metadata keep their credits valid, how long a subscription
/// period's credits outlive the period, and which channels announce it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantTerms {
    pub credit: CreditTerms,
    pub notify: NotifyChannels,
    /// Days after a subscription period ends that its credits stay valid.
    pub subscription_grace_days: u32,
}

impl From<CreditTerms> for GrantTerms {
    fn from(credit: CreditTerms) -> Self {
        Self {
            credit,
            notify: NotifyChannels::default(),
            subscription_grace_days: 0,
        }
    }
}

/// One delivery to apply: its row in `webhook_deliveries` and its event.
#[derive(Debug, Clone, Copy)]
pub struct Work<'a> {
    pub delivery_row: i64,
    pub event: &'a OrderEvent,
}

/// Applies one event in its own transaction.
pub async fn apply_event(
    pool: &PgPool,
    delivery_row: i64,
    event: &OrderEvent,
    terms: &GrantTerms,
) -> Result<Applied, ApplyError> {
    let results = apply_batch(
        pool,
        &[Work {
            delivery_row,
            event,
        }],
        terms,
    )
    .await?;
    results
        .into_iter()
        .next()
        .expect("one result per work item")
}

/// Applies every item in one transaction and returns one result per item,
/// in the given order. An item that cannot be applied (order unknown, ...)
/// gets its error and leaves no trace; the others still commit. A database
/// error fails the whole batch and nothing is committed.
///
/// Statements per batch, whatever its size: lock the deliveries, create
/// orders from metadata, lock the orders, write everything. Orders created
/// from metadata take their credit validity from `terms`; each grant writes
/// a notification per channel `terms` names.
pub async fn apply_batch(
    pool: &PgPool,
    work: &[Work<'_>],
    terms: &GrantTerms,
) -> Result<Vec<Result<Applied, ApplyError>>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let rows: Vec<i64> = work.iter().map(|w| w.delivery_row).collect();
    let fresh = deliveries::processing::lock_fresh(&mut tx, &rows).await?;
    let mut results: Vec<Option<Result<Applied, ApplyError>>> = work
        .iter()
        .map(|w| match fresh.get(&w.delivery_row) {
            None => Some(Err(ApplyError::DeliveryMissing(w.delivery_row))),
            Some(false) => Some(Ok(Applied::AlreadyProcessed)),
            Some(true) => None,
        })
        .collect();
    // The same delivery twice in one batch (a duplicate publish) is applied once.
    let mut seen = std::collections::HashSet::new();
    for (index, w) in work.iter().enumerate() {
        if results[index].is_none() && !seen.insert(w.delivery_row) {
            results[index] = Some(Ok(Applied::AlreadyProcessed));
        }
    }

    let pending: Vec<usize> = (0..work.len()).filter(|&i| results[i].is_none()).collect();
    let events: Vec<&OrderEvent> = pending
        .iter()
        .map(|&i| work[i].event)
        .filter(|e| e.kind != EventKind::Unknown)
        .collect();
    let mut orders = if events.is_empty() {
        Default::default()
    } else {
        orders::find_or_create_locked(&mut tx, &events, &terms.credit).await?
    };

    let mut changes = writes::Changes::new(
        terms.notify,
        chrono::Duration::days(terms.subscription_grace_days.into()),
    );
    // Deliveries of one order are decided in delivery order, each seeing the
    // order as the previous one left it.
    // Subscriptions that have ended: their invoices grant nothing.
    let mut subscription_ids: Vec<&str> = events
        .iter()
        .filter_map(|e| e.subscription.as_ref().map(|s| s.subscription_id.as_str()))
        .collect();
    subscription_ids.sort_unstable();
    subscription_ids.dedup();
    let ended: std::collections::HashSet<String> = if subscription_ids.is_empty() {
        Default::default()
    } else {
        crate::subscriptions::ended(&mut tx, &subscription_ids)
            .await?
            .into_iter()
            .collect()
    };

    let mut sequence = pending;
    sequence.sort_by_key(|&i| work[i].delivery_row);
    for index in sequence {
        let Work {
            delivery_row,
            event,
        } = work[index];
        results[index] = Some(decide_one(
            &mut changes,
            &mut orders,
            &ended,
            delivery_row,
            event,
        ));
    }
    changes.write(&mut tx).await?;
    // A subscription whose renewal failed is past due from now (Stripe's
    // own `customer.subscription.updated` says so too, and a newer one
    // replaces this).
    let failed_renewals: Vec<&str> = sequence_failed(work, &results);
    if !failed_renewals.is_empty() {
        crate::subscriptions::mark_past_due(&mut tx, &failed_renewals).await?;
    }
    tx.commit().await?;
    Ok(results
        .into_iter()
        .map(|r| r.expect("every item has a result"))
        .collect())
}

/// The subscriptions of this batch's invoices that failed an order's payment.
fn sequence_failed<'w>(
    work: &'w [Work<'_>],
    results: &[Option<Result<Applied, ApplyError>>],
) -> Vec<&'w str> {
    work.iter()
        .zip(results)
        .filter(|(_, result)| {
            matches!(
                result,
                Some(Ok(Applied::Recorded {
                    payment_failed: true,
                    ..
                }))
            )
        })
        .filter_map(|(w, _)| w.event.subscription.as_ref())
        .map(|s| s.subscription_id.as_str())
        .collect()
}

/// Runs the state machine for one delivery against the order as it stands in
/// this batch, records the changes, and updates the in-memory order.
fn decide_one(
    changes: &mut writes::Changes,
    orders: &mut orders::LockedOrders,
    ended_subscriptions: &std::collections::HashSet<String>,
    delivery_row: i64,
    event: &OrderEvent,
) -> Result<Applied, ApplyError> {
    if event.kind == EventKind::Unknown {
        let applied = Applied::Ignored {
            reason: "unknown event type",
        };
        changes.outcome(delivery_row, &applied);
        return Ok(applied);
    }
    let key = orders.key_for(event).to_owned();
    let Some(order) = orders.by_id.get_mut(&key) else {
        if event.kind == EventKind::PaymentSucceeded {
            return Err(ApplyError::OrderUnknown(event.order_id.clone()));
        }
        let applied = Applied::Ignored {
            reason: "event for an unknown order",
        };
        changes.outcome(delivery_row, &applied);
        return Ok(applied);
    };
    let package = find_bought(&order.package_id)
        .ok_or_else(|| ApplyError::UnknownPackage(order.package_id.clone()))?;
    let facts = OrderFacts {
        provider: order.provider,
        status: order.status,
        user_id: &order.user_id,
        package,
        under_review: order.review_reason.is_some(),
    };
    let mut decision = decide(&facts, event);
    // A payment for a subscription that has ended is not granted: a person
    // looks (it should not happen; the money was taken all the same).
    if let (Decision::Grant { .. }, Some(period)) = (&decision, &event.subscription)
        && ended_subscriptions.contains(&period.subscription_id)
    {
        decision = Decision::Conflict {
            reason: format!(
                "payment for subscription {}, which has ended",
                period.subscription_id
            ),
        };
    }
    let applied = match &decision {
        Decision::Grant { credits, anomaly } => Applied::Granted {
            user_id: order.user_id.clone(),
            credits: *credits,
            anomaly: *anomaly,
        },
        Decision::Duplicate => Applied::DuplicateOrder,
        Decision::Conflict { reason } => Applied::Conflict {
            reason: reason.clone(),
            newly_held: !facts.under_review,
        },
        Decision::Transition { to } => Applied::Recorded {
            anomaly: None,
            payment_failed: *to == OrderStatus::Failed && facts.status != OrderStatus::Failed,
        },
        Decision::Record { anomaly } => Applied::Recorded {
            anomaly: *anomaly,
            payment_failed: false,
        },
    };
    changes.apply(delivery_row, order, event, &decision, &applied);
    match &decision {
        Decision::Grant { .. } => order.status = OrderStatus::Completed,
        Decision::Transition { to } => order.status = *to,
        Decision::Conflict { reason } => {
            order.review_reason.get_or_insert_with(|| reason.clone());
        }
        Decision::Duplicate | Decision::Record { .. } => {}
    }
    Ok(applied)
}
