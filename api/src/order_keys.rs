//! The `Idempotency-Key` of `POST /api/payments/orders` and its table,
//! `order_idempotency_keys` (its statements are `ledgerhook_store::order_keys`).
//!
//! A retried purchase (a double click, a lost answer) must not create a
//! second order. The key is reserved before Crossmint is called, so that of
//! concurrent requests with one key only one calls Crossmint; the others
//! wait for its answer and return it. The reservation becomes the order's in
//! the transaction that records the order. A request that fails releases
//! its reservation, so the key can be used again; one that dies leaves it
//! for a lease, after which the next request with the key takes it over.
//!
//! A key is kept for [`RETENTION`] from its reservation, then forgotten:
//! its stored answer carries the order's client secret, which must not be
//! kept forever. A request with an older key takes it over as a new one
//! (a new order), and every reservation first deletes a bounded batch of
//! expired keys ([`purge_expired`]), so the table holds about a day of keys
//! without a separate task.

use std::time::Duration;

use axum::http::HeaderMap;
use ledgerhook_store::order_keys as store;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::ApiError;

pub const HEADER: &str = "idempotency-key";
pub const MAX_KEY_CHARS: usize = 255;
/// How often a request waits on another's reservation of its key.
const WAIT_STEP: Duration = Duration::from_millis(50);
/// How long a key replays its order. Retries of one purchase (double
/// clicks, lost answers, a client's retry loop) happen within minutes; a
/// day is far past them.
pub const RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
/// Expired keys deleted per reservation at most. Each reservation adds at
/// most one key, so this keeps up with any rate and works off a backlog;
/// bounded so that one request never pays for a large cleanup.
const PURGE_BATCH: i64 = 100;

/// A well-formed key: 1 to 255 letters, digits or `-_.:+/=` (UUIDs, ULIDs,
/// base64), optionally in double quotes (the IETF draft's sf-string form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The request's key, if it sent one; a malformed or repeated header is
    /// `400 INVALID_REQUEST` naming it.
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, ApiError> {
        let mut values = headers.get_all(HEADER).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        let invalid = || ApiError::InvalidRequest {
            message: format!(
                "Idempotency-Key is one header of 1 to {MAX_KEY_CHARS} letters, digits or -_.:+/="
            ),
            field: Some("Idempotency-Key".to_owned()),
        };
        if values.next().is_some() {
            return Err(invalid());
        }
        let text = value.to_str().map_err(|_| invalid())?;
        let text = text
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(text);
        let well_formed = (1..=MAX_KEY_CHARS).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:+/=".contains(&b));
        if !well_formed {
            return Err(invalid());
        }
        Ok(Some(Self(text.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// This request's hold on a key: it creates the order, then [`bind`]s it
/// or [`release`]s the key.
#[derive(Debug, Clone)]
pub struct Reservation {
    pub user_id: String,
    pub key: IdempotencyKey,
    token: Uuid,
}

impl Reservation {
    fn hold(&self) -> store::KeyHold<'_> {
        store::KeyHold {
            user_id: &self.user_id,
            key: self.key.as_str(),
            token: self.token,
        }
    }

    /// This hold's own id: a new one for every reservation, a takeover
    /// included. The provider's idempotency key of the attempt.
    pub fn attempt(&self) -> Uuid {
        self.token
    }
}

#[derive(Debug)]
pub enum Claim {
    /// This request holds the key and creates the order.
    Reserved(Reservation),
    /// An earlier request with this key created the order: its answer.
    Done(Value),
    /// The key was first used for another package.
    OtherPackage(String),
}

/// Takes the key for this request, or finds what an earlier request with it
/// did, waiting while another request holds it. `lease` is how long a
/// holder may take (Crossmint's timeout and a margin); a reservation older
/// than that belongs to a request that died, and is taken over.
pub async fn claim(
    pool: &PgPool,
    user_id: &str,
    key: &IdempotencyKey,
    package_id: &str,
    lease: Duration,
) -> Result<Claim, ApiError> {
    purge_expired(pool).await;
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    let retention_secs = i64::try_from(RETENTION.as_secs()).unwrap_or(i64::MAX);
    // Past a lease the holder is gone and the key is taken over; two more
    // cover a takeover race lost to another waiter.
    let deadline = tokio::time::Instant::now() + lease * 3;
    loop {
        let token = Uuid::now_v7();
        // Taken over: a reservation past its lease, or any key past its
        // retention (whether or not the purge got to it yet), which starts
        // afresh, for any package, as a new order.
        let reserved = store::try_reserve(
            pool,
            store::KeyHold {
                user_id,
                key: key.as_str(),
                token,
            },
            package_id,
            lease_ms,
            retention_secs,
        )
        .await?;
        if reserved == Some(token) {
            return Ok(Claim::Reserved(Reservation {
                user_id: user_id.to_owned(),
                key: key.clone(),
                token,
            }));
        }
        let existing = store::existing(pool, user_id, key.as_str()).await?;
        match existing {
            Some((first, _)) if first != package_id => return Ok(Claim::OtherPackage(first)),
            Some((_, Some(response))) => return Ok(Claim::Done(response)),
            // Held by a running request (or released just now): look again.
            Some((_, None)) | None => {}
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::Internal(anyhow::anyhow!(
                "Idempotency-Key still held by another request after {:?}",
                lease * 3
            )));
        }
        tokio::time::sleep(WAIT_STEP).await;
    }
}

/// Binds the key to the order just recorded, with the answer a retry gets,
/// inside the transaction that records the order. False when the
/// reservation was taken over meanwhile (this request outlived its lease):
/// the caller must then roll back and not answer with its order.
pub async fn bind(
    tx: &mut PgConnection,
    reservation: &Reservation,
    provider_order_id: &str,
    response: &Value,
) -> Result<bool, sqlx::Error> {
    store::bind(tx, reservation.hold(), provider_order_id, response).await
}

/// Deletes up to [`PURGE_BATCH`] keys older than [`RETENTION`], oldest
/// first, with their stored answers. An index range scan of
/// `order_idempotency_keys_reserved_idx` that stops at the first key still
/// kept, so usually one index page and no row. Rows another request holds
/// (a takeover of that very key, another purge) are skipped, not waited
/// for. A failure is only logged: the purchase does not depend on it, and
/// the next reservation tries again.
pub async fn purge_expired(pool: &PgPool) {
    let retention_secs = i64::try_from(RETENTION.as_secs()).unwrap_or(i64::MAX);
    let purged = store::purge_expired(pool, retention_secs, PURGE_BATCH).await;
    match purged {
        Ok(keys) if keys > 0 => {
            tracing::debug!(keys, "expired Idempotency-Keys deleted");
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "deleting expired Idempotency-Keys failed"),
    }
}

/// Frees the key after this request failed, so a retry can use it at once.
/// A failure to free it is only logged: the lease frees it later.
pub async fn release(pool: &PgPool, reservation: &Reservation) {
    let released = store::release(pool, reservation.hold()).await;
    if let Err(e) = released {
        tracing::warn!(error = %e, "releasing an Idempotency-Key failed; it frees itself after its lease");
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn parse(values: &[&str]) -> Result<Option<IdempotencyKey>, ApiError> {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(HEADER, HeaderValue::from_bytes(value.as_bytes()).unwrap());
        }
        IdempotencyKey::from_headers(&headers)
    }

    #[test]
    fn keys_are_bounded_in_length_and_characters() {
        assert_eq!(parse(&[]).unwrap(), None);
        let uuid = "8e03978e-40d5-43e8-bc93-6894a57f9324";
        assert_eq!(parse(&[uuid]).unwrap().unwrap().as_str(), uuid);
        assert_eq!(
            parse(&[&format!("\"{uuid}\"")]).unwrap().unwrap().as_str(),
            uuid
        );
        assert!(parse(&[&"a".repeat(MAX_KEY_CHARS)]).unwrap().is_some());
        for bad in ["", "\"\"", "has space", "semi;colon", "é"] {
            assert!(parse(&[bad]).is_err(), "{bad:?}");
        }
        assert!(parse(&[&"a".repeat(MAX_KEY_CHARS + 1)]).is_err());
        assert!(parse(&["one", "two"]).is_err());
    }
}
