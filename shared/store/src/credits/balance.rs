//! What a user can spend, and what of it expires soon.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiringCredits {
    pub credits: i64,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditsView {
    /// Spendable now: the balance less anything already past its expiry
    /// that the job has not removed yet.
    pub balance: i64,
    /// Lots expiring within the window asked for, soonest first.
    pub expiring: Vec<ExpiringCredits>,
}

pub async fn credits_view(
    pool: &PgPool,
    user_id: &str,
    within_days: i32,
) -> Result<CreditsView, sqlx::Error> {
    let balance: i64 = sqlx::query_scalar(
        "select coalesce((select balance from user_credits where user_id = $1), 0)
              - coalesce((select sum(remaining) from credit_lots
                          where user_id = $1 and remaining > 0 and expires_at <= now()), 0)::int8",
    )
    .bind(user_id)
    .fetch_one(pool)
    .await?;
    let expiring: Vec<(i64, DateTime<Utc>)> = sqlx::query_as(
        "select remaining, expires_at from credit_lots
         where user_id = $1 and remaining > 0
           and expires_at > now() and expires_at <= now() + make_interval(days => $2)
         order by expires_at, grant_id",
    )
    .bind(user_id)
    .bind(within_days)
    .fetch_all(pool)
    .await?;
    Ok(CreditsView {
        balance,
        expiring: expiring
            .into_iter()
            .map(|(credits, expires_at)| ExpiringCredits {
                credits,
                expires_at,
            })
            .collect(),
    })
}
