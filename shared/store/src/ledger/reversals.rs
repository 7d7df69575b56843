//! Applying a refund or a dispute to the ledger, exactly once: the
//! delivery row is locked and must still be unprocessed, the order is
//! found by the payment it reverses, the share of its credits is taken
//! back (`credits::take_back`, which never goes below zero and records
//! the shortfall), and the delivery is marked, all in one transaction.
//!
//! Reversals are rare next to payments, so each gets a transaction of its
//! own rather than a place in the batch statement.

use sqlx::PgPool;

use super::{Applied, ApplyError};
use crate::credits::{OrderRef, Share, TakeBack, TakeBackCause, TakeBackOutcome, take_back};
use crate::deliveries;
use ledgerhook_domain::{PaymentProvider, PaymentReversal, ReversalKind, Usdt, credits_share};

pub async fn apply_reversal(
    pool: &PgPool,
    delivery_row: i64,
    reversal: &PaymentReversal,
) -> Result<Applied, ApplyError> {
    let mut tx = pool.begin().await?;
    match deliveries::processing::lock_fresh(&mut tx, &[delivery_row])
        .await?
        .get(&delivery_row)
    {
        None => return Err(ApplyError::DeliveryMissing(delivery_row)),
        Some(false) => return Ok(Applied::AlreadyProcessed),
        Some(true) => {}
    }
    // Locked here, before take_back locks it again, so the share is
    // computed from the order as it stays until commit.
    let order: Option<(i64, String, String, String)> = sqlx::query_as(
        "select total_credits, amount::text, currency, provider from payment_orders
         where payment_intent = $1 for update",
    )
    .bind(&reversal.payment_intent)
    .fetch_optional(&mut *tx)
    .await?;
    // The payment that names this intent may not be applied yet (events
    // arrive in any order): retried, and parked if it never comes.
    let Some((total_credits, price, currency, provider)) = order else {
        return Err(ApplyError::OrderUnknown(reversal.payment_intent.clone()));
    };
    // Counted once per order and kind: a second partial refund is not a
    // second refunded order.
    let first_of_order: bool = sqlx::query_scalar(
        "select not exists (
             select 1 from credit_ledger l join payment_orders o on o.id = l.order_id
             where o.payment_intent = $1 and l.kind = $2)",
    )
    .bind(&reversal.payment_intent)
    .bind(reversal.kind.as_str())
    .fetch_one(&mut *tx)
    .await?;
    let applied = match unusable(reversal, &price, &currency, &provider) {
        Some(reason) => Applied::Conflict {
            reason,
            newly_held: false,
        },
        None => {
            let amount = reversal.amount.expect("checked usable");
            let price = Usdt::parse(&price).expect("checked usable");
            let credits = credits_share(total_credits, amount, price);
            let (cause, share) = match reversal.kind {
                ReversalKind::Refund => (
                    TakeBackCause::Refund {
                        reference: &reversal.reference,
                    },
                    Share::UpTo(credits),
                ),
                ReversalKind::Chargeback => (
                    TakeBackCause::Chargeback {
                        reference: &reversal.reference,
                    },
                    Share::Credits(credits),
                ),
            };
            let reason = reversal.reason.as_deref().unwrap_or(&reversal.event_type);
            let outcome = take_back(
                &mut tx,
                TakeBack {
                    order: OrderRef::PaymentIntent(&reversal.payment_intent),
                    share,
                    cause,
                    reason,
                    actor: provider.as_str(),
                },
            )
            .await?;
            match outcome {
                TakeBackOutcome::Taken(taken) => Applied::Reversed {
                    kind: reversal.kind,
                    user_id: taken.user_id,
                    taken: taken.taken,
                    shortfall: taken.shortfall,
                    first_of_order,
                },
                // The same refund total or dispute, reported again.
                TakeBackOutcome::AlreadyTaken(_) => Applied::Ignored {
                    reason: "refund or dispute already applied",
                },
                TakeBackOutcome::NotGranted => Applied::Ignored {
                    reason: "reversal of an order that granted nothing",
                },
                TakeBackOutcome::NothingAsked => Applied::Ignored {
                    reason: "its share was taken back already",
                },
                TakeBackOutcome::NoSuchOrder => {
                    return Err(ApplyError::OrderUnknown(reversal.payment_intent.clone()));
                }
            }
        }
    };
    deliveries::processing::mark_processed(
        &mut tx,
        delivery_row,
        applied.outcome(),
        super::writes::detail(&applied).as_deref(),
    )
    .await?;
    tx.commit().await?;
    Ok(applied)
}

/// Why the reversal cannot be read against its order, if it cannot.
fn unusable(
    reversal: &PaymentReversal,
    price: &str,
    currency: &str,
    provider: &str,
) -> Option<String> {
    if PaymentProvider::parse(provider) != Some(PaymentProvider::Stripe) {
        return Some(format!(
            "a Stripe {} for a {provider} order",
            reversal.kind.as_str()
        ));
    }
    if let Err(e) = reversal.amount {
        return Some(format!(
            "{} amount is unusable: {e}",
            reversal.kind.as_str()
        ));
    }
    if reversal.currency.as_deref() != Some(currency) {
        return Some(format!(
            "{} in {:?}, the order was paid in {currency}",
            reversal.kind.as_str(),
            reversal.currency.as_deref().unwrap_or("no currency")
        ));
    }
    if Usdt::parse(price).is_err() {
        return Some(format!("the order's amount {price:?} is unreadable"));
    }
    None
}
