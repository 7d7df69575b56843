//! Recording deliveries and the outbox bookkeeping, in PostgreSQL.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::delivery::{PROVIDER, VerifiedDelivery, headers_json};

pub enum Recorded {
    /// First time we see this delivery id; `row` is its primary key.
    New { row: i64 },
    /// The sender retried a delivery we already hold.
    Duplicate,
}

/// Inserts the delivery unless its id is already recorded. Durable when this
/// returns: the caller may answer 200.
pub async fn record(
    pool: &PgPool,
    delivery: &VerifiedDelivery,
    received_at: DateTime<Utc>,
) -> Result<Recorded, sqlx::Error> {
    let signed_at = DateTime::from_timestamp(delivery.signed_at, 0).unwrap_or(received_at);
    let row: Option<i64> = sqlx::query_scalar(
        "insert into webhook_deliveries
             (provider, delivery_id, body, headers, signed_at, received_at, verified_by)
         values ($1, $2, $3, $4, $5, $6, $7)
         on conflict on constraint webhook_deliveries_provider_delivery_id_key do nothing
         returning id",
    )
    .bind(PROVIDER)
    .bind(&delivery.delivery_id)
    .bind(&delivery.body[..])
    .bind(headers_json(&delivery.headers))
    .bind(signed_at)
    .bind(received_at)
    .bind(&delivery.verified_by)
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        Some(row) => Recorded::New { row },
        None => Recorded::Duplicate,
    })
}

/// Marks deliveries the broker has confirmed.
pub async fn mark_published(pool: &PgPool, rows: &[i64]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update webhook_deliveries set published_at = now()
         where id = any($1) and published_at is null",
    )
    .bind(rows)
    .execute(pool)
    .await?;
    Ok(())
}

/// A delivery the relay found unpublished.
#[derive(sqlx::FromRow)]
pub struct Unpublished {
    pub id: i64,
    pub delivery_id: String,
    pub body: Vec<u8>,
    pub received_at: DateTime<Utc>,
}

/// Claims up to `limit` deliveries unpublished for longer than `grace`
/// (and not claimed by another relay within `grace`), oldest first.
pub async fn claim_unpublished(
    pool: &PgPool,
    grace: std::time::Duration,
    limit: i64,
) -> Result<Vec<Unpublished>, sqlx::Error> {
    sqlx::query_as(
        "update webhook_deliveries set publish_attempted_at = now()
         where id in (
             select id from webhook_deliveries
             where published_at is null
               and received_at < now() - $1::interval
               and (publish_attempted_at is null or publish_attempted_at < now() - $1::interval)
             order by received_at
             limit $2
             for update skip locked)
         returning id, delivery_id, body, received_at",
    )
    .bind(grace)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// How many deliveries await a confirmed publish, and the oldest one's age.
pub async fn unpublished_backlog(pool: &PgPool) -> Result<(i64, f64), sqlx::Error> {
    sqlx::query_as(
        "select count(*), coalesce(extract(epoch from now() - min(received_at))::float8, 0)
         from webhook_deliveries where published_at is null",
    )
    .fetch_one(pool)
    .await
}
