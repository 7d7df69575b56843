//! PostgreSQL: connecting, creating the database if missing, migrating.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::migrate::MigrateDatabase as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};

/// The schema, embedded at compile time from `migrations/`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// How long start-up waits for PostgreSQL before giving up.
const STARTUP_WAIT: Duration = Duration::from_secs(30);

/// Connects a pool, creating the database and applying migrations first.
///
/// Safe when several processes start at once: a concurrent CREATE DATABASE
/// is tolerated, and sqlx's migrator serialises on an advisory lock.
///
/// `application_name` shows in `pg_stat_activity`, so an operator (or a
/// test) can tell the ingester's connections from the workers'.
pub async fn connect_and_migrate(
    url: &str,
    max_connections: u32,
    application_name: &str,
) -> anyhow::Result<PgPool> {
    ensure_database(url).await?;
    let options = PgConnectOptions::from_str(url)
        .context("parsing DATABASE_URL")?
        .application_name(application_name);
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        // A ping per checkout cost 14-20% of the insert path here; a dead
        // connection shows up as an error on first use and is replaced.
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .context("connecting to PostgreSQL")?;
    MIGRATOR
        .run(&pool)
        .await
        .context("applying database migrations")?;
    Ok(pool)
}

async fn ensure_database(url: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + STARTUP_WAIT;
    loop {
        match Postgres::database_exists(url).await {
            Ok(true) => return Ok(()),
            Ok(false) => match Postgres::create_database(url).await {
                Ok(()) => return Ok(()),
                // Another process created it between our check and our create.
                Err(e) if is_already_exists(&e) => return Ok(()),
                Err(e) => return Err(e).context("creating the database"),
            },
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %e, "PostgreSQL not reachable yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e).context("reaching PostgreSQL"),
        }
    }
}

fn is_already_exists(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(sqlx::error::DatabaseError::code)
        .is_some_and(|code| code == "42P04" || code == "23505")
}

/// Whether an error is worth retrying: the database was unreachable or the
/// transaction lost a race, as opposed to a bug or a constraint we rely on.
pub fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // serialization_failure, deadlock_detected, admin shutdown,
            // cannot_connect_now, too_many_connections, and class 08
            // (connection exceptions).
            matches!(
                &*code,
                "40001" | "40P01" | "57P01" | "57P02" | "57P03" | "53300"
            ) || code.starts_with("08")
        }),
        _ => false,
    }
}
