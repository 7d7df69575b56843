//! `rejected_requests` (and its counters): the last requests the ingester
//! refused, per reason, in a ring of a fixed number of slots each. The
//! ingester writes (rate-limited, off the request path); the console reads.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// A refused request as noted.
#[derive(Debug, Clone)]
pub struct Rejected<'a> {
    /// The refusal's code (`SIGNATURE_VERIFICATION_FAILED`, ...).
    pub reason: &'a str,
    pub at: DateTime<Utc>,
    pub provider: &'a str,
    pub status: i16,
    /// `[[name, value], ...]` as JSON text.
    pub headers: &'a str,
    pub body_bytes: Option<i64>,
}

/// Notes `rejected` in its reason's ring of `kept` slots, over the oldest.
pub async fn note(pool: &PgPool, rejected: &Rejected<'_>, kept: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "with counter as (
             insert into rejected_request_counters as c (reason, next) values ($1, 1)
             on conflict (reason) do update set next = c.next + 1
             returning next
         )
         insert into rejected_requests as r
             (reason, slot, seq, at, provider, status, headers, body_bytes)
         select $1, (counter.next % $7)::int4, counter.next, $2, $3, $4, $5::jsonb, $6
         from counter
         on conflict (reason, slot) do update
             set seq = excluded.seq, at = excluded.at, provider = excluded.provider,
                 status = excluded.status, headers = excluded.headers,
                 body_bytes = excluded.body_bytes",
    )
    .bind(rejected.reason)
    .bind(rejected.at)
    .bind(rejected.provider)
    .bind(rejected.status)
    .bind(rejected.headers)
    .bind(rejected.body_bytes)
    .bind(kept.max(1))
    .execute(pool)
    .await?;
    Ok(())
}

/// A noted refusal as the console shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    pub reason: String,
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub provider: String,
    pub status: i16,
    pub headers: serde_json::Value,
    pub body_bytes: Option<i64>,
}

/// Per reason: how many were noted in all, and when the newest was.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Reason {
    pub reason: String,
    pub noted: i64,
    pub newest: Option<DateTime<Utc>>,
}

pub async fn reasons(pool: &PgPool) -> Result<Vec<Reason>, sqlx::Error> {
    sqlx::query_as(
        "select c.reason, c.next as noted,
                (select max(at) from rejected_requests r where r.reason = c.reason) as newest
         from rejected_request_counters c order by newest desc nulls last",
    )
    .fetch_all(pool)
    .await
}

/// The kept refusals of `reason` (all reasons when `None`), newest first,
/// at most `limit`. The table holds at most the slots of each reason.
pub async fn newest(
    pool: &PgPool,
    reason: Option<&str>,
    limit: i64,
) -> Result<Vec<Row>, sqlx::Error> {
    sqlx::query_as(
        "select reason, seq, at, provider, status, headers, body_bytes from rejected_requests
         where $1::text is null or reason = $1
         order by at desc, seq desc limit $2",
    )
    .bind(reason)
    .bind(limit)
    .fetch_all(pool)
    .await
}
