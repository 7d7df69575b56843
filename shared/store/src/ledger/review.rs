//! Orders held for review (a payment that contradicts its order: amount,
//! currency, user or package), and their resolution by a person: `release`
//! grants the order's credits as recorded at its creation, once; `reject`
//! grants nothing and closes the order. Either clears the hold, with the
//! operator and reason in the order's history and events. The operator's
//! command and the console call these; nobody edits the table by hand.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::credits::manual_grant::{self, ManualGrant, ManualGrantOutcome};
use crate::credits::order_grant::order_grant;
use crate::ledger::orders;

/// An order held for review.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HeldOrder {
    pub provider: String,
    pub provider_order_id: String,
    pub user_id: String,
    pub package_id: String,
    pub status: String,
    pub total_credits: i64,
    pub review_reason: String,
    /// When the hold was put (its `review.held` event).
    pub held_at: Option<DateTime<Utc>>,
}

/// Orders held for review, the longest held first, at most `limit`.
pub async fn held(pool: &PgPool, limit: i64) -> Result<Vec<HeldOrder>, sqlx::Error> {
    sqlx::query_as(
        "select o.provider, o.provider_order_id, o.user_id, o.package_id, o.status,
                o.total_credits, o.review_reason,
                (select max(e.created_at) from payment_order_events e
                 where e.order_id = o.id and e.event_type = 'review.held') as held_at
         from payment_orders o
         where o.review_reason is not null
         order by held_at nulls first, o.created_at
         limit $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// What resolving a hold did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase", tag = "result")]
pub enum Resolution {
    /// Released: the order's credits were granted (ledger entry).
    Granted {
        user_id: String,
        credits: i64,
        ledger_id: i64,
        balance_after: i64,
    },
    /// Released, but the order had granted already (the hold came from a
    /// later event): the hold is cleared, nothing granted again.
    AlreadyGranted { ledger_id: i64 },
    /// Rejected: nothing granted; the order's status now.
    Rejected { status: String },
    /// No order by that id.
    NotFound,
    /// The order is not held for review (never, or resolved already).
    NotHeld,
}

impl Resolution {
    /// A refusal's machine-readable code; none when the hold was resolved.
    pub fn refusal_code(&self) -> Option<&'static str> {
        match self {
            Self::NotFound => Some("ORDER_NOT_FOUND"),
            Self::NotHeld => Some("ORDER_NOT_HELD"),
            _ => None,
        }
    }
}

struct Locked {
    id: Uuid,
    user_id: String,
    status: String,
    total_credits: i64,
    review_reason: Option<String>,
}

async fn lock(
    tx: &mut PgConnection,
    provider_order_id: &str,
) -> Result<Option<Locked>, sqlx::Error> {
    let row: Option<(Uuid, String, String, i64, Option<String>)> = sqlx::query_as(
        "select id, user_id, status, total_credits, review_reason from payment_orders
         where provider_order_id = $1 for update",
    )
    .bind(provider_order_id)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(row.map(
        |(id, user_id, status, total_credits, review_reason)| Locked {
            id,
            user_id,
            status,
            total_credits,
            review_reason,
        },
    ))
}

/// The order, locked, with the reason it is held; or why it cannot be
/// resolved (no such order, not held).
async fn lock_held(
    tx: &mut PgConnection,
    provider_order_id: &str,
) -> Result<Result<(Locked, String), Resolution>, sqlx::Error> {
    let Some(order) = lock(tx, provider_order_id).await? else {
        return Ok(Err(Resolution::NotFound));
    };
    match order.review_reason.clone() {
        Some(held_for) => Ok(Ok((order, held_for))),
        None => Ok(Err(Resolution::NotHeld)),
    }
}

/// Releases the hold on `provider_order_id` in the caller's transaction:
/// grants the order's credits to its owner (a manual grant standing in for
/// the purchase grant, under a key of its own, so running it twice grants
/// once) unless it granted already, and clears the hold.
pub async fn release(
    tx: &mut PgConnection,
    provider_order_id: &str,
    actor: &str,
    reason: &str,
) -> Result<Resolution, sqlx::Error> {
    let (order, held_for) = match lock_held(tx, provider_order_id).await? {
        Ok(held) => held,
        Err(refused) => return Ok(refused),
    };
    let resolution = match order_grant(tx, order.id).await? {
        Some(granted) => Resolution::AlreadyGranted {
            ledger_id: granted.ledger_id,
        },
        None => {
            let key = format!("review-release:{}", order.id);
            let description = format!("released from review ({held_for}): {reason}");
            let grant = ManualGrant {
                user_id: &order.user_id,
                credits: order.total_credits,
                reason: &description,
                idempotency_key: &key,
                order: Some(provider_order_id),
                actor,
                email: None,
            };
            match manual_grant::grant_by_hand(tx, grant).await? {
                ManualGrantOutcome::Granted(granted) => Resolution::Granted {
                    user_id: granted.user_id,
                    credits: granted.credits,
                    ledger_id: granted.ledger_id,
                    balance_after: granted.balance_after,
                },
                // The order is locked and had no grant: nothing else can
                // have granted it, nor used this key.
                other => {
                    return Err(sqlx::Error::Protocol(format!(
                        "releasing {provider_order_id}: unexpected grant outcome {other:?}"
                    )));
                }
            }
        }
    };
    clear_hold(
        tx,
        &order,
        None,
        Ending::Released,
        (actor, reason, &held_for),
    )
    .await?;
    Ok(resolution)
}

/// Rejects the payment that put `provider_order_id` on hold, in the
/// caller's transaction: nothing is granted, an order still waiting for its
/// payment is closed as `failed` (a completed one stays completed), and the
/// hold is cleared. Giving the buyer's money back is done at the provider.
pub async fn reject(
    tx: &mut PgConnection,
    provider_order_id: &str,
    actor: &str,
    reason: &str,
) -> Result<Resolution, sqlx::Error> {
    let (order, held_for) = match lock_held(tx, provider_order_id).await? {
        Ok(held) => held,
        Err(refused) => return Ok(refused),
    };
    let status = match order.status.as_str() {
        "pending" | "paid" | "expired" => "failed".to_owned(),
        other => other.to_owned(),
    };
    clear_hold(
        tx,
        &order,
        Some(&status),
        Ending::Rejected,
        (actor, reason, &held_for),
    )
    .await?;
    Ok(Resolution::Rejected { status })
}

/// How a hold ends: the event recorded and the word in the history.
#[derive(Debug, Clone, Copy)]
enum Ending {
    Released,
    Rejected,
}

/// Clears the hold through the order's writer, with who and why.
async fn clear_hold(
    tx: &mut PgConnection,
    order: &Locked,
    status: Option<&str>,
    ending: Ending,
    (actor, reason, held_for): (&str, &str, &str),
) -> Result<(), sqlx::Error> {
    let (event_type, verb) = match ending {
        Ending::Released => ("review.released", "released"),
        Ending::Rejected => ("review.rejected", "rejected"),
    };
    orders::clear_hold(
        tx,
        orders::HoldCleared {
            order_id: order.id,
            status,
            history_reason: &format!("{verb} from review by {actor}: {reason}"),
            event_type,
            event: &json!({"operator": actor, "reason": reason, "heldFor": held_for}),
        },
    )
    .await
}
