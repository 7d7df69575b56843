//! Per-user rate limits that hold across every API instance: a sliding
//! window kept in PostgreSQL (the times of the user's recent allowed
//! requests), checked and updated in one statement.
//!
//! Exact, unlike a token bucket: never more than `limit` allowed requests in
//! any `window`. A refused request is not recorded, so a client that keeps
//! knocking is not locked out longer than the window.

use std::time::Duration;

use sqlx::PgPool;

#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    pub action: &'static str,
    pub limit: u32,
    pub window: Duration,
}

impl RateLimit {
    /// `Ok(())` when allowed (and counted); `Err(seconds)` to wait otherwise.
    pub async fn check(
        &self,
        pool: &PgPool,
        user_id: &str,
    ) -> Result<Result<(), u64>, sqlx::Error> {
        let window_secs = self.window.as_secs_f64();
        let allowed: Option<bool> = sqlx::query_scalar(
            "insert into api_rate_limits as r (user_id, action, hits)
             values ($1, $2, array[clock_timestamp()])
             on conflict (user_id, action) do update
                 set hits = array(select h from unnest(r.hits) as h
                                  where h > clock_timestamp() - make_interval(secs => $3)
                                  order by h) || clock_timestamp()
                 where cardinality(array(select h from unnest(r.hits) as h
                                         where h > clock_timestamp() - make_interval(secs => $3)))
                       < $4
             returning true",
        )
        .bind(user_id)
        .bind(self.action)
        .bind(window_secs)
        .bind(self.limit as i32)
        .fetch_optional(pool)
        .await?;
        if allowed.is_some() {
            return Ok(Ok(()));
        }
        // Refused: the wait is until the oldest hit in the window leaves it.
        let wait: f64 = sqlx::query_scalar(
            "select coalesce(extract(epoch from min(h) + make_interval(secs => $3) - clock_timestamp()), 1)::float8
             from api_rate_limits, unnest(hits) as h
             where user_id = $1 and action = $2
               and h > clock_timestamp() - make_interval(secs => $3)",
        )
        .bind(user_id)
        .bind(self.action)
        .bind(window_secs)
        .fetch_one(pool)
        .await?;
        Ok(Err(wait.ceil().max(1.0) as u64))
    }
}
