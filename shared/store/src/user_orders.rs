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
    /// Credits taken back from this order's grant, by cause.
    pub refunded_credits: i64,
    pub charged_back_credits: i64,
    pub revoked_credits: i64,
    /// What those take-backs could not take (already spent).
    pub taken_back_shortfall: i64,
}

#[derive(sqlx::FromRow)]
pub struct Statistics {
    pub total_orders: i64,
    pub successful_orders: i64,
    pub failed_orders: i64,
    /// The paid total when every paid order is in one currency; `None`
    /// when they span two (a sum of USDT and USD means nothing).
    pub total_spent: Option<String>,
    pub total_spent_by_currency: Value,
    pub total_credits_earned: i64,
    /// Likewise, one currency's average or `None`.
    pub average_order_value: Option<String>,
    pub average_order_value_by_currency: Value,
    /// Orders refunded (in part or whole), charged back, revoked.
    pub refunded_orders: i64,
    pub charged_back_orders: i64,
    pub revoked_orders: i64,
    /// Credits taken back by all of those together.
    pub credits_taken_back: i64,
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
    // Take-backs are read through the user's own ledger entries (indexed by
    // user), not per order.
    sqlx::query_as(
        "with taken as (
             select order_id,
                    coalesce(sum(-credits) filter (where kind = 'refund'), 0)::int8 as refunded,
                    coalesce(sum(-credits) filter (where kind = 'chargeback'), 0)::int8 as charged_back,
                    coalesce(sum(-credits) filter (where kind = 'revoke'), 0)::int8 as revoked,
                    coalesce(sum(shortfall), 0)::int8 as shortfall
             from credit_ledger
             where user_id = $1 and kind in ('refund', 'chargeback', 'revoke')
             group by order_id
         )
         select o.provider_order_id, o.provider, o.package_id, o.package_snapshot,
                round(o.amount, 6)::text as amount, o.currency, o.status, o.status_history,
                o.total_credits, o.base_credits, o.bonus_credits, o.review_reason, o.chain_used,
                o.transaction_hash, o.created_at, o.paid_at, o.completed_at,
                coalesce(t.refunded, 0) as refunded_credits,
                coalesce(t.charged_back, 0) as charged_back_credits,
                coalesce(t.revoked, 0) as revoked_credits,
                coalesce(t.shortfall, 0) as taken_back_shortfall
         from payment_orders o left join taken t on t.order_id = o.id
         where o.user_id = $1
         order by o.created_at desc, o.id desc
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
         ), by_currency as (
             select currency, sum(amount) as spent, avg(amount) as average
             from paid group by currency
         ), taken as (
             select order_id, kind, -credits as credits from credit_ledger
             where user_id = $1 and kind in ('refund', 'chargeback', 'revoke')
         ), one_currency as (
             select count(*) <= 1 as yes from by_currency
         )
         select (select count(*) from mine) as total_orders,
                (select count(*) from paid) as successful_orders,
                (select count(*) from mine where status = 'failed') as failed_orders,
                case when (select yes from one_currency)
                     then round(coalesce((select sum(spent) from by_currency), 0), 6)::text
                end as total_spent,
                coalesce((select jsonb_object_agg(currency, round(spent, 6)::text) from by_currency),
                         '{}'::jsonb) as total_spent_by_currency,
                coalesce((select sum(total_credits) from paid where status = 'completed'), 0)::int8
                    as total_credits_earned,
                case when (select yes from one_currency)
                     then round(coalesce((select avg(amount) from paid), 0), 6)::text
                end as average_order_value,
                coalesce((select jsonb_object_agg(currency, round(average, 6)::text) from by_currency),
                         '{}'::jsonb) as average_order_value_by_currency,
                (select count(distinct order_id) from taken where kind = 'refund') as refunded_orders,
                (select count(distinct order_id) from taken where kind = 'chargeback')
                    as charged_back_orders,
                (select count(distinct order_id) from taken where kind = 'revoke') as revoked_orders,
                coalesce((select sum(credits) from taken), 0)::int8 as credits_taken_back,
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
