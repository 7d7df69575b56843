//! The outbox: deliveries recorded but not yet confirmed by the broker
//! (the ingester's publisher and relay).

use sqlx::PgPool;

use super::DeliveryColumns;
use ledgerhook_domain::Delivery;

/// Removes confirmed deliveries from the outbox.
pub async fn mark_published(pool: &PgPool, rows: &[i64]) -> Result<(), sqlx::Error> {
    sqlx::query("delete from delivery_outbox where delivery_row = any($1)")
        .bind(rows)
        .execute(pool)
        .await?;
    Ok(())
}

/// Claims up to `limit` deliveries unpublished for longer than `grace`
/// (and not claimed by another relay within `grace`), oldest first.
pub async fn claim_unpublished(
    pool: &PgPool,
    grace: std::time::Duration,
    limit: i64,
) -> Result<Vec<Delivery>, sqlx::Error> {
    let rows: Vec<DeliveryColumns> = sqlx::query_as(
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
         select d.id, d.provider, d.delivery_id, d.received_at, d.body
         from claimed c join webhook_deliveries d on d.id = c.delivery_row
         order by d.id",
    )
    .bind(grace)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(super::from_columns).collect()
}

/// How many deliveries await a confirmed publish, and the oldest one's age
/// in seconds.
pub async fn unpublished_backlog(pool: &PgPool) -> Result<(i64, f64), sqlx::Error> {
    sqlx::query_as(
        "select count(*), coalesce(extract(epoch from now() - min(created_at))::float8, 0)
         from delivery_outbox",
    )
    .fetch_one(pool)
    .await
}
