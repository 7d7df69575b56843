//! `replay_jobs`: replays of everything a filter matched, run in the
//! background by the console that started them. The console writes the
//! job's progress after each batch and reads its cancel flag there.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;

/// A job as shown.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Job {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub reason: String,
    pub filter: Value,
    pub cap: i32,
    pub state: String,
    pub matched: i32,
    pub sent: i32,
    pub skipped: i32,
    pub cancel_requested: bool,
    pub heartbeat_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

const COLUMNS: &str = "select id, created_at, created_by, reason, filter, cap, state, matched,
        sent, skipped, cancel_requested, heartbeat_at, finished_at, error from replay_jobs";

/// Records a new running job in the caller's transaction (with its audit row).
pub async fn create(
    tx: &mut sqlx::PgConnection,
    created_by: &str,
    reason: &str,
    filter: &Value,
    cap: i32,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "insert into replay_jobs (created_by, reason, filter, cap) values ($1, $2, $3, $4)
         returning id",
    )
    .bind(created_by)
    .bind(reason)
    .bind(filter)
    .bind(cap)
    .fetch_one(&mut *tx)
    .await
}

/// Adds a batch's counts and moves the heartbeat; returns whether a cancel
/// was asked for.
pub async fn progress(
    pool: &PgPool,
    id: i64,
    matched: i32,
    sent: i32,
    skipped: i32,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "update replay_jobs set matched = matched + $2, sent = sent + $3, skipped = skipped + $4,
                heartbeat_at = now()
         where id = $1 returning cancel_requested",
    )
    .bind(id)
    .bind(matched)
    .bind(sent)
    .bind(skipped)
    .fetch_one(pool)
    .await
}

/// Ends a job in the caller's transaction (with its audit row): `done`,
/// `cancelled` or `failed` (with the error).
pub async fn finish(
    tx: &mut sqlx::PgConnection,
    id: i64,
    state: &str,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update replay_jobs set state = $2, error = $3, finished_at = now(), heartbeat_at = now()
         where id = $1 and state = 'running'",
    )
    .bind(id)
    .bind(state)
    .bind(error)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Asks a running job to stop after its current batch; one whose heartbeat
/// is older than `stale_secs` (its console stopped) is cancelled at once.
/// False if it is not running.
pub async fn request_cancel(
    tx: &mut sqlx::PgConnection,
    id: i64,
    stale_secs: i64,
) -> Result<bool, sqlx::Error> {
    let asked = sqlx::query(
        "update replay_jobs set cancel_requested = true,
                state = case when heartbeat_at < now() - make_interval(secs => $2::float8)
                             then 'cancelled' else state end,
                finished_at = case when heartbeat_at < now() - make_interval(secs => $2::float8)
                                   then now() end
         where id = $1 and state = 'running'",
    )
    .bind(id)
    .bind(stale_secs as f64)
    .execute(&mut *tx)
    .await?;
    Ok(asked.rows_affected() == 1)
}

/// Marks jobs whose console stopped (heartbeat older than `stale_secs`) as
/// failed; how many. Run when a console starts.
pub async fn fail_stale(pool: &PgPool, stale_secs: i64) -> Result<u64, sqlx::Error> {
    let failed = sqlx::query(
        "update replay_jobs set state = 'failed', finished_at = now(),
                error = 'interrupted: the console running it stopped'
         where state = 'running' and heartbeat_at < now() - make_interval(secs => $1::float8)",
    )
    .bind(stale_secs as f64)
    .execute(pool)
    .await?;
    Ok(failed.rows_affected())
}

/// A job still running (its heartbeat within `stale_secs`), if any.
pub async fn running(pool: &PgPool, stale_secs: i64) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "select id from replay_jobs
         where state = 'running' and heartbeat_at >= now() - make_interval(secs => $1::float8)
         order by id limit 1",
    )
    .bind(stale_secs as f64)
    .fetch_optional(pool)
    .await
}

pub async fn get(pool: &PgPool, id: i64) -> Result<Option<Job>, sqlx::Error> {
    sqlx::query_as(&format!("{COLUMNS} where id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// The newest jobs, at most `limit`.
pub async fn newest(pool: &PgPool, limit: i64) -> Result<Vec<Job>, sqlx::Error> {
    sqlx::query_as(&format!("{COLUMNS} order by id desc limit $1"))
        .bind(limit)
        .fetch_all(pool)
        .await
}
