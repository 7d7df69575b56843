//! `ledgerhook-admin migrate`: the schema as a deploy step of its own, for
//! services started with `RUN_MIGRATIONS=false`. Creates the database if
//! missing (as the services do), applies the migrations embedded in this
//! build, and records what it applied in `operator_actions`.

use anyhow::Context as _;
use ledgerhook_store::db::{self, MIGRATOR};
use serde_json::json;

use super::Printout;
use ledgerhook_store::audit::{self as audit_log, Entry};

/// Brings `url`'s database up to this build's schema.
pub async fn migrate(url: &str, operator: Option<&str>) -> anyhow::Result<Printout> {
    db::ensure_database(url).await?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(super::DATABASE_CONNECT_TIMEOUT)
        .connect(url)
        .await
        .context("connecting to PostgreSQL")?;
    // What is pending now is what this run applies: the migrator holds an
    // advisory lock, so a concurrent run applies the rest or nothing.
    let pending = db::pending_migrations(&pool).await?;
    MIGRATOR
        .run(&pool)
        .await
        .context("applying database migrations")?;
    let applied: Vec<_> = pending
        .iter()
        .map(|m| json!({"version": m.version, "description": m.description}))
        .collect();
    let result = json!({"applied": applied});
    audit_log::record(
        &pool,
        Entry {
            operator,
            reason: None,
            command: "migrate",
            arguments: json!({}),
            result: result.clone(),
        },
    )
    .await
    .context("recording the migrate in operator_actions")?;
    let text = if pending.is_empty() {
        "schema up to date: no migrations to apply\n".to_owned()
    } else {
        let mut text = format!("applied {} migrations:\n", pending.len());
        for m in &pending {
            text.push_str(&format!("  {} {}\n", m.version, m.description));
        }
        text
    };
    pool.close().await;
    Ok(Printout::done(result, text))
}
