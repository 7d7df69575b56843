//! What a user reads of their own orders (`payment_orders`, read only:
//! [`crate::ledger::orders`] writes it): confirm's status, history's pages
//! and statistics. Amounts are exact decimal text computed by PostgreSQL's
//! numeric (six places), never a float.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;

#[derive(sqlx::FromRow)]
pub struct OrderRow {
    pub provider_order_id: String,
    pub provider: String,
    pub package_id: String,
    pub package_snapshot: Value,
    pub amount: String,
    pub currency: String,
    pub status: String,
    pub status_history: Value,
    pub total_credits: i64,
    pub base_credits: i64,
    pub bonus_credits: i64,
    pub review_reason: Option<String>,
    pub chain_used: Option<String>,
    pub transaction_hash: Option<String>,
    pub created_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
pub struct Statistics {
    pub total_orders: i64,
    pub successful_orders: i64,
    pub failed_orders: i64,
    pub total_spent: String,
    pub total_spent_by_currency: Value,
    pub total_credits_earned: i64,
    pub average_order_value: String,
    pub first_purchase_at: Option<DateTime<Utc>>,
    pub last_purchase_at: Option<DateTime<Utc>>,
    pub pending_orders: i64,
    pub credits_awaiting_confirmation: i64,
}

/// Where the user's order stands, for `confirm`.
#[derive(sqlx::FromRow)]
pub struct OrderProgress {
    pub provider: String,
    pub currency: String,
    pub status: String,
    pub total_credits: i64,
    pub review_reason: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub expired_at: Option<DateTime<Utc>>,
}

/// The order `order_id` if `user_id` owns it: another user's order is
/// indistinguishable from none.
pub async fn progress(
    pool: &PgPool,
    order_id: &str,
    user_id: &str,
) -> Result<Option<OrderProgress>, sqlx::Error> {
    sqlx::query_as(
        "select provider, currency, status, total_credits, review_reason, paid_at, completed_at, expired_at
         from payment_orders where provider_order_id = $1 and user_id = $2",
    )
    .bind(order_id)
    .bind(user_id)
    .fetch_optional(pool)
    .await
}

/// One page of the user's orders, newest first.
pub async fn page(
    pool: &PgPool,
    user_id: &str,
    limit: i64,
    offset: i64,
) -> Result<Vec<OrderRow>, sqlx::Error> {
    sqlx::query_as(
        "select provider_order_id, provider, package_id, package_snapshot, round(amount, 6)::text as amount,
                currency, status, status_history, total_credits, base_credits, bonus_credits,
                review_reason, chain_used, transaction_hash, created_at, paid_at, completed_at
         from payment_orders where user_id = $1
         order by created_at desc, id desc
         limit $2 offset $3",
    )
    .bind(user_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await
}

/// Statistics over all of the user's orders.
pub async fn statistics(pool: &PgPool, user_id: &str) -> Result<Statistics, sqlx::Error> {
    sqlx::query_as(
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
    .bind(user_id)
    .fetch_one(pool)
    .await
}
