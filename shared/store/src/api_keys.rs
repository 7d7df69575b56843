//! API keys for the product's backend: the one owner of `api_keys`. Only a
//! key's SHA-256 is stored; `name_for` is the API's check of a presented
//! key, one probe of the unique index.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sha2::{Digest as _, Sha256};
use sqlx::{PgConnection, PgPool};

/// Every key starts so, which tells it from a JWT (`eyJ...`) at a glance
/// and lets secret scanners recognise a leaked one.
pub const KEY_PREFIX: &str = "lhk_";
/// The random part: 32 bytes, base64url without padding.
const SECRET_CHARS: usize = 43;

/// The text of a key made from 32 random bytes.
pub fn key_text(random: &[u8; 32]) -> String {
    format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(random))
}

/// Whether `text` has a key's shape: checked before any lookup, so garbage
/// costs no query.
pub fn well_formed(text: &str) -> bool {
    text.strip_prefix(KEY_PREFIX).is_some_and(|secret| {
        secret.len() == SECRET_CHARS
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// What is stored of a key, and what a presented key is looked up by.
pub fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<String>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<String>,
}

/// Records a new key; false when the name is taken (by a live or a revoked
/// key: names are never reused, so the audit trail stays unambiguous).
pub async fn add(
    conn: &mut PgConnection,
    name: &str,
    key_hash: &[u8; 32],
    who: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "insert into api_keys (name, key_hash, created_by) values ($1, $2, $3)
         on conflict (name) do nothing",
    )
    .bind(name)
    .bind(&key_hash[..])
    .bind(who)
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Revokes the live key `name`; false when there is none.
pub async fn revoke(
    conn: &mut PgConnection,
    name: &str,
    who: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let revoked = sqlx::query(
        "update api_keys set revoked_at = now(), revoked_by = $2
         where name = $1 and revoked_at is null",
    )
    .bind(name)
    .bind(who)
    .execute(conn)
    .await?;
    Ok(revoked.rows_affected() == 1)
}

pub async fn list(pool: &PgPool) -> Result<Vec<ApiKeyRow>, sqlx::Error> {
    sqlx::query_as(
        "select name, created_at, created_by, revoked_at, revoked_by
         from api_keys order by created_at, name",
    )
    .fetch_all(pool)
    .await
}

/// The name of the live key whose hash this is.
pub async fn name_for(pool: &PgPool, key_hash: &[u8; 32]) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("select name from api_keys where key_hash = $1 and revoked_at is null")
        .bind(&key_hash[..])
        .fetch_optional(pool)
        .await
}
