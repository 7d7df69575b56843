//! `GET /api/payments/history`: the caller's orders, newest first, a page
//! at a time, with statistics over all of them (orders by outcome, total
//! spent, credits earned) for the frontend's summary. Amounts are exact
//! decimal strings (six places), computed by PostgreSQL's numeric, each in
//! its order's `currency` (USDT for Crossmint, USD for Stripe). The
//! packages cost the same numbers in both, so `totalSpent` adds them at
//! par; `totalSpentByCurrency` keeps them apart.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::User;
use crate::error::ApiError;

const DEFAULT_PAGE_SIZE: i64 = 20;
const MAX_PAGE_SIZE: i64 = 100;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/payments/history", get(history))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    page: Option<i64>,
    page_size: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct OrderRow {
    provider_order_id: String,
    provider: String,
    package_id: String,
    package_snapshot: Value,
    amount: String,
    currency: String,
    status: String,
    status_history: Value,
    total_credits: i64,
    base_credits: i64,
    bonus_credits: i64,
    review_reason: Option<String>,
    chain_used: Option<String>,
    transaction_hash: Option<String>,
    created_at: DateTime<Utc>,
    paid_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct Statistics {
    total_orders: i64,
    successful_orders: i64,
    failed_orders: i64,
    total_spent: String,
    total_spent_by_currency: Value,
    total_credits_earned: i64,
    average_order_value: String,
    first_purchase_at: Option<DateTime<Utc>>,
    last_purchase_at: Option<DateTime<Utc>>,
    pending_orders: i64,
    credits_awaiting_confirmation: i64,
}

async fn history(
    State(state): State<AppState>,
    user: User,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(page) = page.map_err(|e| ApiError::invalid_request(e.body_text()))?;
    let number = page.page.unwrap_or(1);
    let size = page.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
    if number < 1 || !(1..=MAX_PAGE_SIZE).contains(&size) || number > i64::MAX / MAX_PAGE_SIZE {
        return Err(ApiError::invalid_request(format!(
            "page starts at 1; pageSize is 1 to {MAX_PAGE_SIZE}"
        )));
    }
    let orders: Vec<OrderRow> = sqlx::query_as(
        "select provider_order_id, provider, package_id, package_snapshot, round(amount, 6)::text as amount,
                currency, status, status_history, total_credits, base_credits, bonus_credits,
                review_reason, chain_used, transaction_hash, created_at, paid_at, completed_at
         from payment_orders where user_id = $1
         order by created_at desc, id desc
         limit $2 offset $3",
    )
    .bind(&user.id)
    .bind(size)
    .bind((number - 1) * size)
    .fetch_all(&state.pool)
    .await?;
    let stats: Statistics = sqlx::query_as(
        "with mine as (
             select * from payment_orders where user_id = $1
         ), paid as (
             select * from mine where status in ('paid', 'completed')
         )
         select (select count(*) from mine) as total_orders,
                (select count(*) from paid) as successful_orders,
                (select count(*) from mine where status = 'failed') as failed_orders,
                round(coalesce((select sum(amount) from paid), 0), 6)::text as total_spent,
                coalesce((select jsonb_object_agg(currency, spent)
                          from (select currency, round(sum(amount), 6)::text as spent
                                from paid group by currency) by_currency), '{}'::jsonb)
                    as total_spent_by_currency,
                coalesce((select sum(total_credits) from paid where status = 'completed'), 0)::int8
                    as total_credits_earned,
                round(coalesce((select avg(amount) from paid), 0), 6)::text as average_order_value,
                (select min(coalesce(paid_at, created_at)) from paid) as first_purchase_at,
                (select max(coalesce(paid_at, created_at)) from paid) as last_purchase_at,
                (select count(*) from mine where status = 'pending') as pending_orders,
                coalesce((select sum(total_credits) from mine where status in ('pending', 'paid')), 0)::int8
                    as credits_awaiting_confirmation",
    )
    .bind(&user.id)
    .fetch_one(&state.pool)
    .await?;
    let total_pages = (stats.total_orders + size - 1) / size;
    Ok(Json(json!({
        "userId": user.id,
        "orders": orders.into_iter().map(order_json).collect::<Vec<_>>(),
        "pagination": {
            "page": number,
            "pageSize": size,
            "totalOrders": stats.total_orders,
            "totalPages": total_pages,
        },
        "statistics": {
            "totalOrders": stats.total_orders,
            "successfulOrders": stats.successful_orders,
            "failedOrders": stats.failed_orders,
            "totalSpent": stats.total_spent,
            "totalSpentByCurrency": stats.total_spent_by_currency,
            "totalCreditsEarned": stats.total_credits_earned,
            "averageOrderValue": stats.average_order_value,
            "firstPurchaseAt": stats.first_purchase_at,
            "lastPurchaseAt": stats.last_purchase_at,
        },
        "currentStatus": {
            "pendingOrders": stats.pending_orders,
            "creditsAwaitingConfirmation": stats.credits_awaiting_confirmation,
        },
    })))
}

fn order_json(order: OrderRow) -> Value {
    json!({
        "orderId": order.provider_order_id,
        "provider": order.provider,
        "packageId": order.package_id,
        "packageSnapshot": order.package_snapshot,
        "amount": order.amount,
        "currency": order.currency,
        "status": order.status,
        "statusHistory": order.status_history,
        "underReview": order.review_reason.is_some(),
        "credits": {
            "baseCredits": order.base_credits,
            "bonusCredits": order.bonus_credits,
            "totalCredits": order.total_credits,
        },
        "chainUsed": order.chain_used,
        "transactionHash": order.transaction_hash,
        "createdAt": order.created_at,
        "paidAt": order.paid_at,
        "completedAt": order.completed_at,
    })
}
