//! Recording verified deliveries (the ingester).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use ledgerhook_domain::Provider;

/// A verified delivery about to be recorded.
#[derive(Debug, Clone)]
pub struct NewDelivery<'a> {
    /// The sender's message id, stable across its retries.
    pub delivery_id: &'a str,
    /// The exact bytes that were signed.
    pub body: &'a [u8],
    /// Every request header as the JSON text `[[name, value], ...]` (text,
    /// not a tree: the ingester writes it straight out, PostgreSQL parses it).
    pub headers: String,
    /// The signed timestamp from the signature headers.
    pub signed_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    /// Fingerprint of the key that verified it (never the key).
    pub verified_by: &'a str,
}

/// Inserts a batch of deliveries from one `provider` (see [`record_mixed`]).
pub async fn record_batch(
    pool: &PgPool,
    provider: &str,
    deliveries: &[NewDelivery<'_>],
) -> Result<Vec<Option<i64>>, sqlx::Error> {
    let providers = vec![provider; deliveries.len()];
    insert(pool, &providers, deliveries).await
}

/// Inserts a batch of deliveries, each from its own provider (the
/// ingester's group commit mixes them), and their outbox rows in one
/// statement (one transaction, one WAL flush). Returns, for each delivery
/// in order, its new row id, or `None` when the (provider, delivery id) was
/// already recorded (a retry by the sender, or the same one twice in this
/// batch).
pub async fn record_mixed(
    pool: &PgPool,
    deliveries: &[(Provider, NewDelivery<'_>)],
) -> Result<Vec<Option<i64>>, sqlx::Error> {
    let providers: Vec<&str> = deliveries.iter().map(|(p, _)| p.as_str()).collect();
    let rows: Vec<NewDelivery<'_>> = deliveries.iter().map(|(_, d)| d.clone()).collect();
    insert(pool, &providers, &rows).await
}

async fn insert(
    pool: &PgPool,
    providers: &[&str],
    deliveries: &[NewDelivery<'_>],
) -> Result<Vec<Option<i64>>, sqlx::Error> {
    debug_assert_eq!(providers.len(), deliveries.len());
    // Only the first of a (provider, id) pair seen twice in this batch is
    // sent: the statement joins the keys it inserted back to the batch by
    // that pair, which must therefore name one delivery.
    let mut seen = HashSet::with_capacity(deliveries.len());
    let mut sent_providers = Vec::with_capacity(deliveries.len());
    let mut ids = Vec::with_capacity(deliveries.len());
    let mut bodies = Vec::with_capacity(deliveries.len());
    let mut headers = Vec::with_capacity(deliveries.len());
    let mut signed = Vec::with_capacity(deliveries.len());
    let mut received = Vec::with_capacity(deliveries.len());
    let mut verified_by = Vec::with_capacity(deliveries.len());
    for (provider, delivery) in providers.iter().zip(deliveries) {
        if !seen.insert((*provider, delivery.delivery_id)) {
            continue;
        }
        sent_providers.push(*provider);
        ids.push(delivery.delivery_id);
        bodies.push(delivery.body);
        headers.push(delivery.headers.as_str());
        signed.push(delivery.signed_at);
        received.push(delivery.received_at);
        verified_by.push(delivery.verified_by);
    }
    // The key first, in the narrow unpartitioned table that makes a sender's
    // id unique across every month (`on conflict` there: a retry); its row
    // id (the month in the high bits) drawn as it is inserted. Then the wide
    // row, routed to its month's partition by that id, only for keys that
    // were new; then the outbox row. The headers go in as `json`, kept as
    // sent (migration 20261207000007: `jsonb` cost a tenth of this).
    let inserted: Vec<(i64, String, String)> = sqlx::query_as(
        "with keyed as (
             insert into delivery_keys (provider, delivery_id, delivery_row, received_at)
             select provider, id,
                    delivery_row_base(received) + nextval('webhook_delivery_rows'), received
             from unnest($1::text[], $2::text[], $6::timestamptz[]) as n(provider, id, received)
             on conflict on constraint delivery_keys_pkey do nothing
             returning delivery_row, provider, delivery_id, received_at
         ), inserted as (
             insert into webhook_deliveries
                 (id, provider, delivery_id, body, headers, signed_at, received_at, verified_by)
             select k.delivery_row, k.provider, k.delivery_id, b.body, b.headers::json, b.signed,
                    k.received_at, b.verified_by
             from keyed k
             join unnest($1::text[], $2::text[], $3::bytea[], $4::text[], $5::timestamptz[],
                         $7::text[])
                  as b(provider, id, body, headers, signed, verified_by)
                  on b.provider = k.provider and b.id = k.delivery_id
             returning id, provider, delivery_id
         ), queued as (
             insert into delivery_outbox (delivery_row) select id from inserted
         )
         select id, provider, delivery_id from inserted",
    )
    .bind(&sent_providers)
    .bind(&ids)
    .bind(&bodies)
    .bind(&headers)
    .bind(&signed)
    .bind(&received)
    .bind(&verified_by)
    .fetch_all(pool)
    .await?;

    // Hand each new row to the first delivery with its provider and id; any
    // other one with the same pair in this batch is a duplicate. (The same
    // id from two providers is two deliveries.)
    let mut new_rows: HashMap<(String, String), i64> = inserted
        .into_iter()
        .map(|(row, provider, id)| ((provider, id), row))
        .collect();
    Ok(providers
        .iter()
        .zip(deliveries)
        .map(|(provider, d)| new_rows.remove(&((*provider).to_owned(), d.delivery_id.to_owned())))
        .collect())
}
