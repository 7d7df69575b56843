//! The operator's side of the outbox (`ledgerhook-admin notifications`):
//! what is parked and why, and sending parked rows again once the cause
//! (a setting, the mail server) is fixed.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// A parked notification, as the operator sees it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Parked {
    pub id: Uuid,
    pub channel: String,
    pub order_id: Uuid,
    pub attempts: i32,
    pub parked_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// Rows by channel and state (`pending`, `sent`, `parked`).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct StateCount {
    pub channel: String,
    pub state: String,
    pub count: i64,
}

/// How many rows are in each state, per channel.
pub async fn state_counts(pool: &PgPool) -> Result<Vec<StateCount>, sqlx::Error> {
    sqlx::query_as(
        "select channel,
                case when sent_at is not null then 'sent'
                     when parked_at is not null then 'parked'
                     else 'pending' end as state,
                count(*) as count
         from notifications group by 1, 2 order by 1, 2",
    )
    .fetch_all(pool)
    .await
}

/// Parked rows, most recently parked first.
pub async fn parked(pool: &PgPool, limit: i64) -> Result<Vec<Parked>, sqlx::Error> {
    sqlx::query_as(
        "select id, channel, order_id, attempts, parked_at, last_error
         from notifications where parked_at is not null
         order by parked_at desc limit $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Makes every parked row due again with a fresh count of attempts (its
/// last error kept for reference); returns how many. In the caller's
/// transaction, so the audit row commits with it. Rows keep their id, so a
/// message that did go out before it was parked keeps its Message-ID.
pub async fn resend_parked(tx: &mut PgConnection) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "update notifications
         set parked_at = null, attempts = 0, next_attempt_at = now()
         where parked_at is not null",
    )
    .execute(tx)
    .await?;
    Ok(done.rows_affected())
}
