//! Removing credits whose time has come, as compensating ledger entries.
//!
//! The job finds the users with due lots; each is expired by
//! [`super::book::expire_due`] under the user's balance lock.

use sqlx::PgPool;

use super::book;

/// What one run of the job removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryRun {
    pub users: u64,
    pub grants: u64,
    pub credits: i64,
}

/// Users handled per pass; each user is its own short transaction.
const USERS_PER_PASS: i64 = 100;

/// Expires every lot whose time has come, user by user, until none is left.
/// Idempotent and safe with several instances: a user another instance is
/// handling is skipped (`skip locked`) and found done on a later pass, and
/// `credit_ledger_one_expiry_per_grant` refuses a second entry regardless.
pub async fn expire_due(pool: &PgPool) -> Result<ExpiryRun, sqlx::Error> {
    let mut run = ExpiryRun::default();
    loop {
        let users: Vec<String> = sqlx::query_scalar(
            "select distinct user_id from credit_lots
             where remaining > 0 and expires_at <= now()
             limit $1",
        )
        .bind(USERS_PER_PASS)
        .fetch_all(pool)
        .await?;
        let mut progressed = false;
        for user_id in &users {
            let mut tx = pool.begin().await?;
            if book::try_lock_balance(&mut tx, user_id).await?.is_none() {
                continue;
            }
            let (grants, credits) = book::expire_due(&mut tx, user_id).await?;
            tx.commit().await?;
            if grants > 0 {
                progressed = true;
                run.users += 1;
                run.grants += grants;
                run.credits += credits;
            }
        }
        if users.is_empty() || !progressed {
            return Ok(run);
        }
    }
}
