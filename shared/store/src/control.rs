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
    /// Providers paused on their own (`crossmint`, `stripe`): their
    /// deliveries wait while the others' are processed.
    pub paused_providers: Vec<String>,
}

const COLUMNS: &str =
    "select paused, since, changed_by, reason, paused_providers from processing_control";

pub async fn read(pool: &PgPool) -> Result<Control, sqlx::Error> {
    sqlx::query_as(COLUMNS).fetch_one(pool).await
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
    let before: Control = sqlx::query_as(&format!("{COLUMNS} for update"))
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

/// Pauses (or resumes) one provider's deliveries in the caller's
/// transaction; returns the switch as it was, and whether this changed it.
pub async fn set_provider(
    tx: &mut PgConnection,
    provider: &str,
    paused: bool,
    by: &str,
    reason: &str,
) -> Result<(Control, bool), sqlx::Error> {
    let before: Control = sqlx::query_as(&format!("{COLUMNS} for update"))
        .fetch_one(&mut *tx)
        .await?;
    if before.paused_providers.iter().any(|p| p == provider) == paused {
        return Ok((before, false));
    }
    sqlx::query(
        "update processing_control
         set paused_providers = case when $1
                 then array_append(paused_providers, $2)
                 else array_remove(paused_providers, $2) end,
             since = now(), changed_by = $3, reason = $4",
    )
    .bind(paused)
    .bind(provider)
    .bind(by)
    .bind(reason)
    .execute(&mut *tx)
    .await?;
    Ok((before, true))
}

/// What every worker polls: the switch, the providers paused on their own,
/// and the orders whose revoke fell short with the credits they still owe.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Poll {
    pub paused: bool,
    pub paused_providers: Vec<String>,
    pub shortfall_orders: i64,
    pub shortfall_credits: i64,
}

/// One primary-key read and an index scan.
pub async fn poll(pool: &PgPool) -> Result<Poll, sqlx::Error> {
    sqlx::query_as(
        "select (select paused from processing_control) as paused,
                (select paused_providers from processing_control) as paused_providers,
                count(*) as shortfall_orders,
                coalesce(sum(revoke_shortfall), 0)::int8 as shortfall_credits
         from payment_orders where revoke_shortfall > 0",
    )
    .fetch_one(pool)
    .await
}
