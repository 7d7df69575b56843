//! Deliveries as the console lists and shows them: filtered pages, newest
//! first, and one delivery whole. Read-only.
//!
//! Cost: a page walks the primary key backwards from its cursor and stops
//! after `limit` matches. Filters are not indexed (an index on
//! `webhook_deliveries` would be one more write on every delivery the
//! ingester records), so a filter that matches little scans far: the
//! console's pool has a statement timeout that bounds it.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// What to list. `None` is "any".
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub provider: Option<String>,
    /// An outcome (`granted`, `duplicate`, `parked`, ...), or `unprocessed`.
    pub outcome: Option<String>,
    /// The event's `type` as the body names it, e.g. `orders.payment.succeeded`.
    pub event_type: Option<String>,
    /// Received at or after.
    pub from: Option<DateTime<Utc>>,
    /// Received before.
    pub to: Option<DateTime<Utc>>,
    /// The cursor: rows below this id.
    pub before: Option<i64>,
}

/// A delivery in a list.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Listed {
    pub row: i64,
    pub provider: String,
    pub delivery_id: String,
    pub received_at: DateTime<Utc>,
    pub processed_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    pub outcome_detail: Option<String>,
    /// The body's first 512 bytes, enough to name the event type.
    pub head: Vec<u8>,
    pub size: i32,
}

/// One page of deliveries matching `filter`, newest first, at most `limit`.
pub async fn page(pool: &PgPool, filter: &Filter, limit: i64) -> Result<Vec<Listed>, sqlx::Error> {
    // The event type is matched on the body's bytes, as `"type":"X"` or
    // `"type": "X"` (compact and pretty-printed JSON): no decoding, so a body
    // that is not UTF-8 cannot fail the page.
    let type_patterns: Option<Vec<Vec<u8>>> = filter.event_type.as_ref().map(|t| {
        vec![
            format!("\"type\":\"{t}\"").into_bytes(),
            format!("\"type\": \"{t}\"").into_bytes(),
        ]
    });
    sqlx::query_as(
        "select id as row, provider, delivery_id, received_at, processed_at, outcome,
                outcome_detail, substring(body from 1 for 512) as head,
                octet_length(body) as size
         from webhook_deliveries
         where id < coalesce($1, 9223372036854775807)
           and ($2::text is null or provider = $2)
           and ($3::text is null
                or ($3 = 'unprocessed' and processed_at is null)
                or outcome = $3)
           and ($4::bytea[] is null
                or position($4[1] in body) > 0 or position($4[2] in body) > 0)
           and ($5::timestamptz is null or received_at >= $5)
           and ($6::timestamptz is null or received_at < $6)
         order by id desc
         limit $7",
    )
    .bind(filter.before)
    .bind(filter.provider.as_deref())
    .bind(filter.outcome.as_deref())
    .bind(type_patterns)
    .bind(filter.from)
    .bind(filter.to)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// One delivery whole, as received.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Whole {
    pub row: i64,
    pub provider: String,
    pub delivery_id: String,
    pub body: Vec<u8>,
    pub headers: serde_json::Value,
    pub signed_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    /// The fingerprint of the secret that verified it.
    pub verified_by: String,
    pub processed_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    pub outcome_detail: Option<String>,
    /// When retention or erasure dropped its body and headers.
    pub scrubbed_at: Option<DateTime<Utc>>,
    /// The dropped body's SHA-256 (kept with its key).
    pub body_sha256: Option<Vec<u8>>,
}

pub async fn whole(pool: &PgPool, row: i64) -> Result<Option<Whole>, sqlx::Error> {
    sqlx::query_as(
        // A row recorded before migration 20261207000007 has its headers
        // in `headers_jsonb`.
        "select d.id as row, d.provider, d.delivery_id, d.body,
                coalesce(d.headers, d.headers_jsonb::json) as headers, d.signed_at,
                d.received_at, d.verified_by, d.processed_at, d.outcome, d.outcome_detail,
                d.scrubbed_at, k.body_sha256
         from webhook_deliveries d
         left join delivery_keys k on k.provider = d.provider and k.delivery_id = d.delivery_id
         where d.id = $1",
    )
    .bind(row)
    .fetch_optional(pool)
    .await
}

/// The rows of deliveries with this sender's id, from any provider (the
/// key table's primary key, once per provider).
pub async fn rows_with_delivery_id(
    pool: &PgPool,
    providers: &[&str],
    delivery_id: &str,
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "select delivery_row from delivery_keys
         where provider = any($1) and delivery_id = $2 order by delivery_row",
    )
    .bind(providers)
    .bind(delivery_id)
    .fetch_all(pool)
    .await
}
