//! Usage tracking (`usage_daily`, this module's table): spends and credits
//! spent per user per UTC day, for the product's dashboards.
//!
//! Not critical (seed 004): it is written after the spend has committed, in
//! its own short transaction with a statement timeout, so a failure here
//! (table missing, a constraint, a lock held too long) can neither fail nor
//! undo a spend. The caller logs and counts the failure and answers as usual.

use std::time::Duration;

use sqlx::PgPool;

/// Longest the usage write may take, in PostgreSQL and in total; the spend
/// has already committed and its answer waits for this.
pub const WRITE_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("recording usage failed")]
    Database(#[from] sqlx::Error),
    #[error("recording usage took longer than {0:?}")]
    Timeout(Duration),
}

/// Adds one spend of `credits` to the user's count for today (UTC).
pub async fn record_spend(pool: &PgPool, user_id: &str, credits: i64) -> Result<(), UsageError> {
    tokio::time::timeout(WRITE_TIMEOUT, write(pool, user_id, credits))
        .await
        .map_err(|_| UsageError::Timeout(WRITE_TIMEOUT))??;
    Ok(())
}

async fn write(pool: &PgPool, user_id: &str, credits: i64) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    // `set local` ends with the transaction, so the pooled connection goes
    // back with its usual timeout.
    sqlx::query(&format!(
        "set local statement_timeout = {}",
        WRITE_TIMEOUT.as_millis()
    ))
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "insert into usage_daily (user_id, day, spends, credits)
         values ($1, (now() at time zone 'utc')::date, 1, $2)
         on conflict (user_id, day) do update
             set spends = usage_daily.spends + 1, credits = usage_daily.credits + excluded.credits",
    )
    .bind(user_id)
    .bind(credits)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Re-keys `user`'s daily usage to `pseudonym` (erasure, in its
/// transaction: the figures stay in the product's totals).
pub async fn rekey_user(
    tx: &mut sqlx::PgConnection,
    user: &str,
    pseudonym: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("update usage_daily set user_id = $2 where user_id = $1")
        .bind(user)
        .bind(pseudonym)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Whether `user` has any usage recorded.
pub async fn knows(tx: &mut sqlx::PgConnection, user: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("select exists (select 1 from usage_daily where user_id = $1)")
        .bind(user)
        .fetch_one(&mut *tx)
        .await
}
