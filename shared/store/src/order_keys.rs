//! `order_idempotency_keys`: the `Idempotency-Key` of order creation (the
//! API's `order_keys` holds the rules: leases, retention, waiting).

use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// One request's hold on a user's key.
#[derive(Debug, Clone, Copy)]
pub struct KeyHold<'a> {
    pub user_id: &'a str,
    pub key: &'a str,
    /// This hold's own id, new for every reservation.
    pub token: Uuid,
}

/// Reserves the key for `hold`, or takes it over: a reservation past its
/// lease (`lease_ms`) for the same package, or any key past its retention
/// (`retention_secs`), which starts afresh as a new order. The reservation
/// now holding the key: `hold.token` when this call took it.
pub async fn try_reserve(
    pool: &PgPool,
    hold: KeyHold<'_>,
    package_id: &str,
    lease_ms: i64,
    retention_secs: i64,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "insert into order_idempotency_keys (user_id, idempotency_key, package_id, reservation)
         values ($1, $2, $3, $4)
         on conflict (user_id, idempotency_key) do update
             set reservation = excluded.reservation, reserved_at = now(),
                 package_id = excluded.package_id,
                 provider_order_id = null, response = null
             where (order_idempotency_keys.provider_order_id is null
                    and order_idempotency_keys.package_id = excluded.package_id
                    and order_idempotency_keys.reserved_at
                        < now() - make_interval(secs => $5::int8 / 1000.0))
                or order_idempotency_keys.reserved_at
                        < now() - make_interval(secs => $6::int8)
         returning reservation",
    )
    .bind(hold.user_id)
    .bind(hold.key)
    .bind(package_id)
    .bind(hold.token)
    .bind(lease_ms)
    .bind(retention_secs)
    .fetch_optional(pool)
    .await
}

/// The package a key was first used for, and the answer its order got once
/// bound (`None` while a request holds it).
pub async fn existing(
    pool: &PgPool,
    user_id: &str,
    key: &str,
) -> Result<Option<(String, Option<Value>)>, sqlx::Error> {
    sqlx::query_as(
        "select package_id, response from order_idempotency_keys
         where user_id = $1 and idempotency_key = $2",
    )
    .bind(user_id)
    .bind(key)
    .fetch_optional(pool)
    .await
}

/// Binds the key to the order just recorded, with the answer a retry gets,
/// in the transaction that records the order. False when the reservation
/// was taken over meanwhile.
pub async fn bind(
    tx: &mut PgConnection,
    hold: KeyHold<'_>,
    provider_order_id: &str,
    response: &Value,
) -> Result<bool, sqlx::Error> {
    let bound = sqlx::query(
        "update order_idempotency_keys set provider_order_id = $4, response = $5
         where user_id = $1 and idempotency_key = $2 and reservation = $3
           and provider_order_id is null",
    )
    .bind(hold.user_id)
    .bind(hold.key)
    .bind(hold.token)
    .bind(provider_order_id)
    .bind(response)
    .execute(tx)
    .await?;
    Ok(bound.rows_affected() == 1)
}

/// Deletes up to `batch` keys older than `retention_secs`, oldest first:
/// an index range scan of `order_idempotency_keys_reserved_idx` that stops
/// at the first key still kept. Rows another request holds are skipped, not
/// waited for. How many went.
pub async fn purge_expired(
    pool: &PgPool,
    retention_secs: i64,
    batch: i64,
) -> Result<u64, sqlx::Error> {
    let purged = sqlx::query(
        "delete from order_idempotency_keys k
         using (select user_id, idempotency_key from order_idempotency_keys
                where reserved_at < now() - make_interval(secs => $1::int8)
                order by reserved_at
                limit $2
                for update skip locked) expired
         where k.user_id = expired.user_id and k.idempotency_key = expired.idempotency_key",
    )
    .bind(retention_secs)
    .bind(batch)
    .execute(pool)
    .await?;
    Ok(purged.rows_affected())
}

/// Frees a key whose request failed (not once it is bound to an order).
pub async fn release(pool: &PgPool, hold: KeyHold<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "delete from order_idempotency_keys
         where user_id = $1 and idempotency_key = $2 and reservation = $3
           and provider_order_id is null",
    )
    .bind(hold.user_id)
    .bind(hold.key)
    .bind(hold.token)
    .execute(pool)
    .await?;
    Ok(())
}

/// Forgets `user`'s idempotency keys (erasure): each is kept 24 hours for
/// a retry's sake, and its answer carries the order's client secret.
pub async fn forget_user(tx: &mut PgConnection, user: &str) -> Result<(), sqlx::Error> {
    sqlx::query("delete from order_idempotency_keys where user_id = $1")
        .bind(user)
        .execute(&mut *tx)
        .await?;
    Ok(())
}
