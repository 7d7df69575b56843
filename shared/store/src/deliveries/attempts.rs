//! `delivery_attempts`: each failed processing attempt of a delivery (a
//! retry scheduled, or the message parked), with its reason. The worker
//! writes them, one statement per batch and only for failures; the console
//! shows them on a delivery's page.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// A failed attempt as the worker notes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed<'a> {
    pub delivery_row: i64,
    /// 1-based.
    pub attempt: i32,
    /// `true`: given up (parked); `false`: another attempt is scheduled.
    pub parked: bool,
    pub reason: &'a str,
    pub retry_in_ms: Option<i64>,
}

pub async fn record(pool: &PgPool, failed: &[Failed<'_>]) -> Result<(), sqlx::Error> {
    let rows: Vec<i64> = failed.iter().map(|f| f.delivery_row).collect();
    let attempts: Vec<i32> = failed.iter().map(|f| f.attempt).collect();
    let outcomes: Vec<&str> = failed
        .iter()
        .map(|f| if f.parked { "parked" } else { "retry" })
        .collect();
    let reasons: Vec<&str> = failed.iter().map(|f| f.reason).collect();
    let retry_in: Vec<Option<i64>> = failed.iter().map(|f| f.retry_in_ms).collect();
    sqlx::query(
        "insert into delivery_attempts (delivery_row, attempt, outcome, reason, retry_in_ms)
         select * from unnest($1::int8[], $2::int4[], $3::text[], $4::text[], $5::int8[])",
    )
    .bind(rows)
    .bind(attempts)
    .bind(outcomes)
    .bind(reasons)
    .bind(retry_in)
    .execute(pool)
    .await?;
    Ok(())
}

/// One attempt as shown.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Attempt {
    pub attempt: i32,
    pub at: DateTime<Utc>,
    pub outcome: String,
    pub reason: String,
    pub retry_in_ms: Option<i64>,
}

/// The newest `limit` failed attempts of delivery row `row`, oldest first
/// (a redrive starts its attempts at 1 again; their times tell them apart).
pub async fn newest_of_delivery(
    pool: &PgPool,
    row: i64,
    limit: i64,
) -> Result<Vec<Attempt>, sqlx::Error> {
    sqlx::query_as(
        "select attempt, at, outcome, reason, retry_in_ms from (
             select id, attempt, at, outcome, reason, retry_in_ms from delivery_attempts
             where delivery_row = $1 order by id desc limit $2
         ) newest order by id",
    )
    .bind(row)
    .bind(limit)
    .fetch_all(pool)
    .await
}
