//! The pause switch, `processing_control` (one row): `ledgerhook-admin
//! pause` turns it, every worker polls it. Also the revoke shortfalls the
//! same poll reads, so that a worker exports them.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

/// The switch as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Control {
    pub paused: bool,
    /// When it was last turned either way.
    pub since: DateTime<Utc>,
    pub changed_by: Option<String>,
    pub reason: Option<String>,
}

pub async fn read(pool: &PgPool) -> Result<Control, sqlx::Error> {
    sqlx::query_as("select paused, since, changed_by, reason from processing_control")
        .fetch_one(pool)
        .await
}

/// Turns the switch to `paused` in the caller's transaction (where the
/// audit row goes too). Returns the switch as it was before, and whether
/// this call changed it (turning it to where it already is changes nothing).
pub async fn set(
    tx: &mut PgConnection,
    paused: bool,
    by: &str,
    reason: &str,
) -> Result<(Control, bool), sqlx::Error> {
    let before: Control = sqlx::query_as(
        "select paused, since, changed_by, reason from processing_control for update",
    )
    .fetch_one(&mut *tx)
    .await?;
    if before.paused == paused {
        return Ok((before, false));
    }
    sqlx::query(
        "update processing_control set paused = $1, since = now(), changed_by = $2, reason = $3",
    )
    .bind(paused)
    .bind(by)
    .bind(reason)
    .execute(&mut *tx)
    .await?;
    Ok((before, true))
}

/// Whether processing is paused, with the orders whose revoke fell short
/// and the credits they still owe: one primary-key read and an index scan.
pub async fn poll(pool: &PgPool) -> Result<(bool, i64, i64), sqlx::Error> {
    sqlx::query_as(
        "select (select paused from processing_control),
                count(*), coalesce(sum(revoke_shortfall), 0)::int8
         from payment_orders where revoke_shortfall > 0",
    )
    .fetch_one(pool)
    .await
}
