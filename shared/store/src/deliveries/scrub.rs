//! Dropping what is personal in recorded deliveries: the body (buyers'
//! e-mail addresses, names, the user's id in metadata) and the headers
//! (addresses, user agents), keeping the row, its ids and outcome, and the
//! body's SHA-256 in `delivery_keys`, so that a copy produced later can be
//! matched against what arrived. Order events and ledger entries keep
//! pointing at the row: the lineage stays.
//!
//! Both header columns are emptied: rows recorded before migration
//! 20261207000007 have theirs in `headers_jsonb`.
//!
//! Retention walks the table by id in bounded batches ([`batch`]); erasure
//! scrubs the rows of one user's orders at once ([`rows`]).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

/// What one batch walked and scrubbed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Batch {
    /// Rows looked at (scrubbed or not).
    pub walked: i64,
    /// Rows scrubbed (with `dry_run`: that would have been).
    pub scrubbed: i64,
    /// The last row looked at: the next batch starts after it. `None` when
    /// nothing was left to walk.
    pub last_row: Option<i64>,
}

/// Looks at the next `limit` rows after `after_row` (by id, so each row is
/// looked at once per walk) among those that may be older than `horizon`,
/// and scrubs those received before `horizon` whose outcome is final: processed, not parked, and not the payment of an order
/// still held for review (the person reviewing it reads the body). An
/// unprocessed delivery is never touched. With `dry_run`, counts only.
///
/// One statement; the walk reads at most `limit` rows through the primary
/// key, whatever it finds, so a batch costs the same in a month where
/// everything was scrubbed already.
pub async fn batch(
    conn: &mut PgConnection,
    horizon: DateTime<Utc>,
    after_row: i64,
    limit: i64,
    dry_run: bool,
) -> Result<Batch, sqlx::Error> {
    let (walked, scrubbed, last_row): (i64, i64, Option<i64>) = sqlx::query_as(
        "with walked as (
             select id, provider, delivery_id, body, outcome, processed_at, received_at,
                    scrubbed_at
             from webhook_deliveries
             -- no row of a month after the horizon's is old enough
             where id > $1 and id < delivery_row_base($2 + interval '1 month')
             order by id limit $3
         ), held as (
             -- the deliveries behind orders held for review (few: the
             -- partial index on held orders, then each one's events)
             select e.delivery_id as held_row
             from payment_orders o join payment_order_events e on e.order_id = o.id
             where o.review_reason is not null and e.delivery_id is not null
         ), picked as (
             select w.id, w.provider, w.delivery_id, w.outcome, sha256(w.body) as hash
             from walked w
             where w.scrubbed_at is null and w.processed_at is not null
               and w.outcome <> 'parked' and w.received_at < $2
               and w.id not in (select held_row from held)
         ), scrubbed as (
             update webhook_deliveries d
             set body = '\\x'::bytea, headers = '[]'::json, headers_jsonb = null,
                 scrubbed_at = now()
             from picked p
             where not $4 and d.id = p.id and d.scrubbed_at is null
               and d.processed_at is not null and d.outcome <> 'parked'
             returning d.id
         ), kept as (
             update delivery_keys k set body_sha256 = p.hash, outcome = p.outcome
             from scrubbed s join picked p on p.id = s.id
             where k.provider = p.provider and k.delivery_id = p.delivery_id
         )
         select (select count(*) from walked),
                case when $4 then (select count(*) from picked)
                     else (select count(*) from scrubbed) end,
                (select max(id) from walked)",
    )
    .bind(after_row)
    .bind(horizon)
    .bind(limit)
    .bind(dry_run)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Batch {
        walked,
        scrubbed,
        last_row,
    })
}

/// Scrubs the rows `rows` whatever their age (erasure, in the caller's
/// transaction), keeping each body's hash; rows scrubbed already keep the
/// hash they have. Returns how many were scrubbed now.
pub async fn rows(conn: &mut PgConnection, rows: &[i64]) -> Result<u64, sqlx::Error> {
    let (Some(lowest), Some(highest)) = (rows.iter().min(), rows.iter().max()) else {
        return Ok(0);
    };
    let scrubbed: i64 = sqlx::query_scalar(
        "with picked as (
             select id, provider, delivery_id, outcome, sha256(body) as hash
             from webhook_deliveries
             where id = any($1) and id between $2 and $3 and scrubbed_at is null
             for update
         ), scrubbed as (
             update webhook_deliveries d
             set body = '\\x'::bytea, headers = '[]'::json, headers_jsonb = null,
                 scrubbed_at = now()
             from picked p where d.id = p.id
             returning d.id
         ), kept as (
             update delivery_keys k set body_sha256 = p.hash, outcome = p.outcome
             from picked p
             where k.provider = p.provider and k.delivery_id = p.delivery_id
         )
         select count(*) from scrubbed",
    )
    .bind(rows)
    .bind(lowest)
    .bind(highest)
    .fetch_one(&mut *conn)
    .await?;
    Ok(u64::try_from(scrubbed).unwrap_or(0))
}
