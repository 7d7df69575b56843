//! `api_rate_limits`: per user and action, the times of the recent allowed
//! requests (a sliding window), checked and updated in one statement.

use std::time::Duration;

use sqlx::PgPool;

/// Counts a request of `user_id` for `action` if fewer than `limit` were
/// allowed in the last `window`: `Ok(())` when allowed (and counted),
/// `Err(seconds)` to wait otherwise. A refused request is not recorded.
pub async fn hit(
    pool: &PgPool,
    user_id: &str,
    action: &str,
    limit: u32,
    window: Duration,
) -> Result<Result<(), u64>, sqlx::Error> {
    // Seconds of a time window, not money: a float is exact enough here.
    let window_secs = window.as_secs_f64();
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
    .bind(action)
    .bind(window_secs)
    .bind(i32::try_from(limit).unwrap_or(i32::MAX))
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
    .bind(action)
    .bind(window_secs)
    .fetch_one(pool)
    .await?;
    Ok(Err(wait.ceil().max(1.0) as u64))
}

/// Forgets `user`'s recent requests (erasure): minutes of state, nothing
/// worth keeping under a pseudonym.
pub async fn forget_user(tx: &mut sqlx::PgConnection, user: &str) -> Result<(), sqlx::Error> {
    sqlx::query("delete from api_rate_limits where user_id = $1")
        .bind(user)
        .execute(&mut *tx)
        .await?;
    Ok(())
}
