//! What an operator (`ledgerhook-admin`) reads and changes on deliveries.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::{DeliveryColumns, from_columns};
use ledgerhook_domain::{Delivery, Provider};

/// A delivery's record without its body: when it came and what became of it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: i64,
    pub delivery_id: String,
    pub received_at: DateTime<Utc>,
    pub processed_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    pub outcome_detail: Option<String>,
    /// When retention or erasure dropped its body and headers.
    pub scrubbed_at: Option<DateTime<Utc>>,
}

const ROW_COLUMNS: &str =
    "select id, delivery_id, received_at, processed_at, outcome, outcome_detail, scrubbed_at
     from webhook_deliveries";

/// [`ROW_COLUMNS`] found through the sender's id: the key table holds the
/// unique (provider, delivery_id) and the row, whose id prunes the wide
/// table to its month.
const KEYED_ROW_COLUMNS: &str = "select d.id, d.delivery_id, d.received_at, d.processed_at,
            d.outcome, d.outcome_detail, d.scrubbed_at
     from delivery_keys k join webhook_deliveries d on d.id = k.delivery_row";

/// Parked deliveries, newest first.
pub async fn parked(pool: &PgPool, limit: i64) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{ROW_COLUMNS} where outcome = 'parked' order by received_at desc limit $1"
    ))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Every parked delivery, oldest first.
pub async fn all_parked(pool: &PgPool) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{ROW_COLUMNS} where outcome = 'parked' order by id"
    ))
    .fetch_all(pool)
    .await
}

/// Whether `provider` delivered (or reconcile recorded) `delivery_id`.
pub async fn find_by(
    pool: &PgPool,
    provider: Provider,
    delivery_id: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "select exists (select 1 from delivery_keys where provider = $1 and delivery_id = $2)",
    )
    .bind(provider.as_str())
    .bind(delivery_id)
    .fetch_one(pool)
    .await
}

/// The delivery with this sender's id, and its exact body (empty once
/// scrubbed). `None` when no wide row is left: never recorded, or its month
/// dropped by retention ([`key_of`] tells them apart).
pub async fn find(
    pool: &PgPool,
    delivery_id: &str,
) -> Result<Option<(DeliveryRow, Vec<u8>)>, sqlx::Error> {
    let Some(row): Option<DeliveryRow> = sqlx::query_as(&format!(
        "{KEYED_ROW_COLUMNS} where k.provider = any($2) and k.delivery_id = $1
         order by k.delivery_row limit 1"
    ))
    .bind(delivery_id)
    .bind(Provider::ALL.iter().map(|p| p.as_str()).collect::<Vec<_>>())
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let body: Vec<u8> = sqlx::query_scalar("select body from webhook_deliveries where id = $1")
        .bind(row.id)
        .fetch_one(pool)
        .await?;
    Ok(Some((row, body)))
}

/// The deliveries with these sender's ids (those recorded), oldest first.
pub async fn with_ids(pool: &PgPool, ids: &[String]) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    // Every provider named, so the key table's primary key answers
    // instead of a scan.
    let providers: Vec<&str> = Provider::ALL.iter().map(|p| p.as_str()).collect();
    sqlx::query_as(&format!(
        "{KEYED_ROW_COLUMNS} where k.provider = any($2) and k.delivery_id = any($1) order by d.id"
    ))
    .bind(ids)
    .bind(providers)
    .fetch_all(pool)
    .await
}

/// The deliveries in these rows (those that exist), oldest first.
pub async fn with_rows(pool: &PgPool, rows: &[i64]) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    let (Some(lowest), Some(highest)) = (rows.iter().min(), rows.iter().max()) else {
        return Ok(Vec::new());
    };
    // The range prunes to the rows' months (see `processing::lock_fresh`).
    sqlx::query_as(&format!(
        "{ROW_COLUMNS} where id = any($1) and id between $2 and $3 order by id"
    ))
    .bind(rows)
    .bind(lowest)
    .bind(highest)
    .fetch_all(pool)
    .await
}

/// The deliveries received in `[from, to)`, oldest first.
pub async fn received_between(
    pool: &PgPool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    // A row's id carries its month, so the id range prunes to the months
    // asked about (received_at itself is in no index).
    sqlx::query_as(&format!(
        "{ROW_COLUMNS} where received_at >= $1 and received_at < $2
           and (id < 1099511627776
                or id between delivery_row_base($1)
                          and delivery_row_base($2 + interval '1 month'))
         order by id"
    ))
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await
}

/// Makes a parked delivery unprocessed again; false if it is not parked
/// (any more).
pub async fn reset_parked(pool: &PgPool, row: i64) -> Result<bool, sqlx::Error> {
    let reset = sqlx::query(
        "update webhook_deliveries set processed_at = null, outcome = null, outcome_detail = null
         where id = $1 and outcome = 'parked'",
    )
    .bind(row)
    .execute(pool)
    .await?;
    Ok(reset.rows_affected() == 1)
}

/// The delivery in row `row`, ready to publish again.
pub async fn load(pool: &PgPool, row: i64) -> Result<Delivery, sqlx::Error> {
    let columns: DeliveryColumns = sqlx::query_as(
        "select id, provider, delivery_id, received_at, body from webhook_deliveries where id = $1",
    )
    .bind(row)
    .fetch_one(pool)
    .await?;
    from_columns(columns)
}

/// The outcome of row `row` once it is processed; `None` until then.
pub async fn outcome(pool: &PgPool, row: i64) -> Result<Option<String>, sqlx::Error> {
    Ok(sqlx::query_scalar(
        "select outcome from webhook_deliveries where id = $1 and processed_at is not null",
    )
    .bind(row)
    .fetch_optional(pool)
    .await?
    .flatten())
}

/// Deliveries that hit an order already granted, grouped by order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct DuplicatedOrder {
    /// The order's id at its provider.
    pub order: String,
    pub user_id: String,
    pub status: String,
    pub total_credits: i64,
    /// Grant entries of the order (purchase or manual): 1 when "never
    /// twice" held, whatever the duplicates.
    pub grants: i64,
    /// Set once the order's grant was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Duplicate deliveries since the time asked for.
    pub duplicates: i64,
    pub first_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    /// The sender's ids of those deliveries, oldest first.
    pub deliveries: Vec<String>,
}

/// Orders hit by duplicate deliveries at or after `since`, the most recently
/// hit first. Read from the order events the worker wrote for each
/// duplicate (`decision = duplicate`), with the delivery each came from.
pub async fn duplicated_orders(
    pool: &PgPool,
    since: DateTime<Utc>,
) -> Result<Vec<DuplicatedOrder>, sqlx::Error> {
    sqlx::query_as(
        "select o.provider_order_id as order, o.user_id, o.status, o.total_credits,
                (select count(*) from credit_ledger l where l.order_id = o.id
                 and l.kind in ('purchase_grant', 'manual_grant')) as grants,
                o.revoked_at,
                count(*) as duplicates, min(e.created_at) as first_at,
                max(e.created_at) as last_at,
                array_agg(coalesce(d.delivery_id, '-') order by e.id) as deliveries
         from payment_order_events e
         join payment_orders o on o.id = e.order_id
         left join webhook_deliveries d on d.id = e.delivery_id
         where e.event_data ->> 'decision' = 'duplicate' and e.created_at >= $1
         group by o.id
         order by max(e.created_at) desc",
    )
    .bind(since)
    .fetch_all(pool)
    .await
}

/// Counts for `ledgerhook-admin status`: deliveries recorded and not yet
/// processed, and parked ones.
pub async fn backlog(pool: &PgPool) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "select count(*) filter (where processed_at is null),
                count(*) filter (where outcome = 'parked')
         from webhook_deliveries",
    )
    .fetch_one(pool)
    .await
}

/// What is kept of a delivery for ever, whatever retention dropped: its
/// key, and once its body was scrubbed the body's hash and the outcome.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Kept {
    pub provider: String,
    pub delivery_id: String,
    pub delivery_row: i64,
    pub received_at: DateTime<Utc>,
    pub body_sha256: Option<Vec<u8>>,
    pub outcome: Option<String>,
}

/// The key of the delivery with this sender's id, from any provider.
pub async fn key_of(pool: &PgPool, delivery_id: &str) -> Result<Option<Kept>, sqlx::Error> {
    sqlx::query_as(
        "select provider, delivery_id, delivery_row, received_at, body_sha256, outcome
         from delivery_keys where provider = any($2) and delivery_id = $1
         order by delivery_row limit 1",
    )
    .bind(delivery_id)
    .bind(Provider::ALL.iter().map(|p| p.as_str()).collect::<Vec<_>>())
    .fetch_optional(pool)
    .await
}
