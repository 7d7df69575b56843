//! Removing credits whose time has come, as compensating ledger entries.
//!
//! Lock order, everywhere credits move: the user's balance row first, then
//! their lots. The worker's grants, spends and this job all follow it, so
//! they cannot deadlock one another.

use sqlx::{PgConnection, PgPool};

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
            let locked: Option<i64> = sqlx::query_scalar(
                "select balance from user_credits where user_id = $1 for update skip locked",
            )
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
            if locked.is_none() {
                continue;
            }
            let (grants, credits) = expire_user_locked(&mut tx, user_id).await?;
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

/// Expires `user_id`'s due lots; the caller holds the user's balance row
/// locked. Returns how many grants were expired and the credits removed.
pub async fn expire_user_locked(
    tx: &mut PgConnection,
    user_id: &str,
) -> Result<(u64, i64), sqlx::Error> {
    let (grants, credits): (i64, i64) = sqlx::query_as(
        "with due as (
             select grant_id, remaining from credit_lots
             where user_id = $1 and remaining > 0 and expires_at <= now()
             order by grant_id
             for update
         ), emptied as (
             update credit_lots l set remaining = 0
             from due where l.grant_id = due.grant_id
         ), entries as (
             insert into credit_ledger (user_id, credits, kind, expired_grant_id)
             select $1, -remaining, 'expiry', grant_id from due
         ), balance as (
             update user_credits
             set balance = balance - (select coalesce(sum(remaining), 0) from due),
                 updated_at = now()
             where user_id = $1 and exists (select 1 from due)
         )
         select count(*), coalesce(sum(remaining), 0)::int8 from due",
    )
    .bind(user_id)
    .fetch_one(&mut *tx)
    .await?;
    Ok((grants as u64, credits))
}
