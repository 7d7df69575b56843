//! Recording deliveries and the outbox bookkeeping, in PostgreSQL.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::delivery::{PROVIDER, VerifiedDelivery, headers_json};

/// A delivery with the time we received it, ready to record.
pub struct Arrival {
    pub delivery: VerifiedDelivery,
    pub received_at: DateTime<Utc>,
}

/// Inserts a batch of deliveries and their outbox rows in one statement (one
/// transaction, one WAL flush). Returns, for each arrival in order, its new
/// row id, or `None` when the delivery id was already recorded (a retry by
/// the sender, or the same id twice in this batch).
pub async fn record_batch(
    pool: &PgPool,
    arrivals: &[Arrival],
) -> Result<Vec<Option<i64>>, sqlx::Error> {
    let mut ids = Vec::with_capacity(arrivals.len());
    let mut bodies = Vec::with_capacity(arrivals.len());
    let mut headers = Vec::with_capacity(arrivals.len());
    let mut signed = Vec::with_capacity(arrivals.len());
    let mut received = Vec::with_capacity(arrivals.len());
    let mut verified_by = Vec::with_capacity(arrivals.len());
    for Arrival {
        delivery,
        received_at,
    } in arrivals
    {
        ids.push(delivery.delivery_id.as_str());
        bodies.push(&delivery.body[..]);
        headers.push(headers_json(&delivery.headers));
        signed.push(DateTime::from_timestamp(delivery.signed_at, 0).unwrap_or(*received_at));
        received.push(*received_at);
        verified_by.push(delivery.verified_by.as_str());
    }
    let inserted: Vec<(i64, String)> = sqlx::query_as(
        "with inserted as (
             insert into webhook_deliveries
                 (provider, delivery_id, body, headers, signed_at, received_at, verified_by)
             select $1, * from unnest($2::text[], $3::bytea[], $4::jsonb[], $5::timestamptz[],
                                      $6::timestamptz[], $7::text[])
             on conflict on constraint webhook_deliveries_provider_delivery_id_key do nothing
             returning id, delivery_id
         ), queued as (
             insert into delivery_outbox (delivery_row) select id from inserted
         )
         select id, delivery_id from inserted",
    )
    .bind(PROVIDER)
    .bind(&ids)
    .bind(&bodies)
    .bind(&headers)
    .bind(&signed)
    .bind(&received)
    .bind(&verified_by)
    .fetch_all(pool)
    .await?;

    // Hand each new row to the first arrival with its id; any other arrival
    // with the same id in this batch is a duplicate.
    let mut new_rows: std::collections::HashMap<String, i64> =
        inserted.into_iter().map(|(id, key)| (key, id)).collect();
    Ok(arrivals
        .iter()
        .map(|a| new_rows.remove(&a.delivery.delivery_id))
        .collect())
}

/// Removes confirmed deliveries from the outbox.
pub async fn mark_published(pool: &PgPool, rows: &[i64]) -> Result<(), sqlx::Error> {
    sqlx::query("delete from delivery_outbox where delivery_row = any($1)")
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
        "with claimed as (
             update delivery_outbox set attempted_at = now()
             where delivery_row in (
                 select delivery_row from delivery_outbox
                 where created_at < now() - $1::interval
                   and (attempted_at is null or attempted_at < now() - $1::interval)
                 order by delivery_row
                 limit $2
                 for update skip locked)
             returning delivery_row)
         select d.id, d.delivery_id, d.body, d.received_at
         from claimed c join webhook_deliveries d on d.id = c.delivery_row
         order by d.id",
    )
    .bind(grace)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// How many deliveries await a confirmed publish, and the oldest one's age.
pub async fn unpublished_backlog(pool: &PgPool) -> Result<(i64, f64), sqlx::Error> {
    sqlx::query_as(
        "select count(*), coalesce(extract(epoch from now() - min(created_at))::float8, 0)
         from delivery_outbox",
    )
    .fetch_one(pool)
    .await
}
