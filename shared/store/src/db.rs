//! PostgreSQL: connecting, creating the database if missing, migrating.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::migrate::MigrateDatabase as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};

use crate::failover;

/// The schema, embedded at compile time from `migrations/`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// How long start-up waits for PostgreSQL before giving up.
const STARTUP_WAIT: Duration = Duration::from_secs(30);

/// What a service does about the schema at start (`RUN_MIGRATIONS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Migrations {
    /// `RUN_MIGRATIONS` unset, `true` or `1`: apply what is missing.
    #[default]
    Apply,
    /// `RUN_MIGRATIONS=false` or `0`: migrations are a deploy step of their
    /// own (`ledgerhook-admin migrate`); start only if every embedded
    /// migration is already applied, so a service never runs against a
    /// schema older than its code.
    Require,
}

impl FromStr for Migrations {
    type Err = &'static str;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "true" | "1" => Ok(Self::Apply),
            "false" | "0" => Ok(Self::Require),
            _ => Err("expected true, false, 1 or 0"),
        }
    }
}

/// A migration as `ledgerhook-admin migrate` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationName {
    pub version: i64,
    pub description: String,
}

/// Connects a pool, creating the database and applying migrations first.
/// (The tests' harness uses this; services go through [`connect`].)
pub async fn connect_and_migrate(
    url: &str,
    max_connections: u32,
    application_name: &str,
) -> anyhow::Result<PgPool> {
    connect(url, max_connections, application_name, Migrations::Apply).await
}

/// Connects a pool, creating the database if missing, then applying the
/// migrations or (with [`Migrations::Require`]) checking they were applied.
///
/// Safe when several processes start at once: a concurrent CREATE DATABASE
/// is tolerated, and sqlx's migrator serialises on an advisory lock.
///
/// `application_name` shows in `pg_stat_activity`, so an operator (or a
/// test) can tell the ingester's connections from the workers'.
pub async fn connect(
    url: &str,
    max_connections: u32,
    application_name: &str,
    migrations: Migrations,
) -> anyhow::Result<PgPool> {
    connect_bounded(url, max_connections, application_name, migrations, None).await
}

/// [`connect`], with every statement of the pool's sessions cancelled after
/// `statement_timeout` when one is given (the console: a person's search
/// must never hold the database for long).
pub async fn connect_bounded(
    url: &str,
    max_connections: u32,
    application_name: &str,
    migrations: Migrations,
    statement_timeout: Option<Duration>,
) -> anyhow::Result<PgPool> {
    // Several hosts (a primary and its standbys): the writable one now,
    // then followed by a watcher (see `failover`).
    let hosts = failover::Hosts::parse(url)?;
    let (url, current) = match &hosts {
        None => (url.to_owned(), 0),
        Some(hosts) => {
            let found = find_host(hosts).await?;
            (hosts.url(found).to_owned(), found)
        }
    };
    let url = url.as_str();
    ensure_database(url).await?;
    let mut options = PgConnectOptions::from_str(url)
        .context("parsing DATABASE_URL")?
        .application_name(application_name);
    if let Some(timeout) = statement_timeout {
        options = options.options([("statement_timeout", format!("{}ms", timeout.as_millis()))]);
    }
    let switched = failover::Switched::default();
    let mut pool_options = PgPoolOptions::new()
        .max_connections(max_connections)
        // A ping per checkout cost 14-20% of the insert path here; a dead
        // connection shows up as an error on first use and is replaced.
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(5));
    if hosts.is_some() {
        // Only with several hosts: a connection opened before the pool
        // moved to another host is closed instead of used.
        let switched = switched.clone();
        pool_options = pool_options.before_acquire(move |_, meta| {
            let current = switched.is_current(meta.age);
            Box::pin(async move { Ok(current) })
        });
    }
    let pool = pool_options
        .connect_with(options)
        .await
        .context("connecting to PostgreSQL")?;
    if let Some(hosts) = hosts {
        failover::watch(
            pool.clone(),
            hosts,
            current,
            switched,
            application_name.to_owned(),
        );
    }
    match migrations {
        Migrations::Apply => {
            MIGRATOR
                .run(&pool)
                .await
                .context("applying database migrations")?;
        }
        Migrations::Require => {
            let pending = pending_migrations(&pool).await?;
            if !pending.is_empty() {
                let names: Vec<String> = pending
                    .iter()
                    .map(|m| format!("{} ({})", m.version, m.description))
                    .collect();
                anyhow::bail!(
                    "the database schema is behind this build: migrations {} are not applied, \
                     and RUN_MIGRATIONS=false; run `ledgerhook-admin migrate` first",
                    names.join(", ")
                );
            }
        }
    }
    Ok(pool)
}

/// The writable host of several, waiting up to [`STARTUP_WAIT`] for one.
async fn find_host(hosts: &failover::Hosts) -> anyhow::Result<usize> {
    let deadline = tokio::time::Instant::now() + STARTUP_WAIT;
    loop {
        if let Some(found) = hosts.find().await {
            return Ok(found);
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("DATABASE_URL: none of its hosts is a writable PostgreSQL");
        }
        tracing::warn!("DATABASE_URL: no writable host answers yet; retrying");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The embedded migrations not yet applied (successfully) to `pool`'s
/// database, in order. A database never migrated has them all pending.
pub async fn pending_migrations(pool: &PgPool) -> anyhow::Result<Vec<MigrationName>> {
    let table: Option<String> = sqlx::query_scalar("select to_regclass('_sqlx_migrations')::text")
        .fetch_one(pool)
        .await
        .context("looking for the migrations table")?;
    let applied: Vec<i64> = if table.is_some() {
        sqlx::query_scalar("select version from _sqlx_migrations where success")
            .fetch_all(pool)
            .await
            .context("reading the applied migrations")?
    } else {
        Vec::new()
    };
    Ok(MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration() && !applied.contains(&m.version))
        .map(|m| MigrationName {
            version: m.version,
            description: m.description.to_string(),
        })
        .collect())
}

/// Creates the database `url` names if it does not exist (waiting up to
/// 30 s for PostgreSQL to be reachable).
pub async fn ensure_database(url: &str) -> anyhow::Result<()> {
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

/// Whether the database answers a `select 1` (readiness probes).
pub async fn answers(pool: &PgPool) -> bool {
    sqlx::query("select 1").execute(pool).await.is_ok()
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
            // 25006 read_only_sql_transaction: a primary just demoted, or a
            // standby reached before the watcher moved the pool.
            matches!(
                &*code,
                "40001" | "40P01" | "57P01" | "57P02" | "57P03" | "53300" | "25006"
            ) || code.starts_with("08")
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::Migrations;

    #[test]
    fn run_migrations_takes_true_false_one_or_zero_only() {
        assert_eq!("true".parse(), Ok(Migrations::Apply));
        assert_eq!("1".parse(), Ok(Migrations::Apply));
        assert_eq!("false".parse(), Ok(Migrations::Require));
        assert_eq!("0".parse(), Ok(Migrations::Require));
        assert!("no".parse::<Migrations>().is_err());
        assert!("".parse::<Migrations>().is_err());
    }
}
