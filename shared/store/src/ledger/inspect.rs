//! An order as an operator inspects it (the console): the order, every
//! event that touched it with the delivery it came from, and the ledger
//! entries it caused. Read-only; each read follows an index (the order's
//! provider id or PaymentIntent, the events' `(order_id, id)`, the ledger's
//! `(user_id, id)`).

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// An order's row, as shown.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Order {
    pub id: Uuid,
    pub provider: String,
    pub provider_order_id: String,
    pub payment_intent: Option<String>,
    pub subscription_id: Option<String>,
    pub user_id: String,
    pub package_id: String,
    /// The expected price as exact decimal text.
    pub amount: String,
    pub currency: String,
    pub total_credits: i64,
    pub status: String,
    pub review_reason: Option<String>,
    pub status_history: serde_json::Value,
    pub created_from: String,
    pub created_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_credits: Option<i64>,
    pub revoke_shortfall: Option<i64>,
}

const ORDER_COLUMNS: &str =
    "select id, provider, provider_order_id, payment_intent, subscription_id,
        user_id, package_id, amount::text as amount, currency, total_credits, status,
        review_reason, status_history, created_from, created_at, paid_at, completed_at,
        revoked_at, revoked_credits, revoke_shortfall
 from payment_orders";

/// The order with this provider's id.
pub async fn order(pool: &PgPool, provider_order_id: &str) -> Result<Option<Order>, sqlx::Error> {
    sqlx::query_as(&format!("{ORDER_COLUMNS} where provider_order_id = $1"))
        .bind(provider_order_id)
        .fetch_optional(pool)
        .await
}

/// The order paid by this PaymentIntent (Stripe).
pub async fn order_of_payment(
    pool: &PgPool,
    payment_intent: &str,
) -> Result<Option<Order>, sqlx::Error> {
    sqlx::query_as(&format!("{ORDER_COLUMNS} where payment_intent = $1"))
        .bind(payment_intent)
        .fetch_optional(pool)
        .await
}

/// Whether anything is recorded for this user (an order or a balance).
pub async fn user_exists(pool: &PgPool, user_id: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "select exists (select 1 from payment_orders where user_id = $1)
             or exists (select 1 from user_credits where user_id = $1)",
    )
    .bind(user_id)
    .fetch_one(pool)
    .await
}

/// One event of an order.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Event {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub event_type: String,
    pub data: serde_json::Value,
    /// The delivery it came from: its row and the sender's id.
    pub delivery_row: Option<i64>,
    pub delivery_id: Option<String>,
}

/// The most events or entries of one order shown: a real order has a
/// handful; a storm of duplicates is summarised by the first ones.
pub const MAX_PER_ORDER: i64 = 200;

/// The order's events, oldest first (at most [`MAX_PER_ORDER`]).
pub async fn events(pool: &PgPool, order: Uuid) -> Result<Vec<Event>, sqlx::Error> {
    sqlx::query_as(
        "select e.id, e.created_at as at, e.event_type, e.event_data as data,
                e.delivery_id as delivery_row, d.delivery_id
         from payment_order_events e
         left join webhook_deliveries d on d.id = e.delivery_id
         where e.order_id = $1 order by e.id limit $2",
    )
    .bind(order)
    .bind(MAX_PER_ORDER)
    .fetch_all(pool)
    .await
}

/// A ledger entry an order caused.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Entry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub credits: i64,
    /// The delivery whose processing wrote it (grants and take-backs from
    /// a webhook), if any.
    pub delivery_row: Option<i64>,
    pub description: Option<String>,
}

/// The ledger entries of `order` (its owner's entries that name it), oldest
/// first.
pub async fn entries(pool: &PgPool, user_id: &str, order: Uuid) -> Result<Vec<Entry>, sqlx::Error> {
    sqlx::query_as(
        "select id, created_at as at, kind, credits, delivery_id as delivery_row, description
         from credit_ledger where user_id = $1 and order_id = $2 order by id limit $3",
    )
    .bind(user_id)
    .bind(order)
    .bind(MAX_PER_ORDER)
    .fetch_all(pool)
    .await
}
