//! `ledgerhook-admin api-key add|list|revoke`: keys for the product's
//! backend, which may spend credits for a user it names. `add` prints the
//! key once; only its SHA-256 is stored (`ledgerhook_store::api_keys`).
//! Each change commits with its audit row, which never holds the key.

use std::fmt::Write as _;

use ledgerhook_store::api_keys;
use ledgerhook_store::audit::{self as audit_log, Entry};
use serde_json::json;
use sqlx::PgPool;

use crate::Printout;
use crate::cli::ApiKeyCommand;
use crate::operators::valid_name;
use crate::password::random_bytes;
use crate::terminal::Shown;

pub async fn run(
    pool: &PgPool,
    who: Option<&str>,
    command: &ApiKeyCommand,
) -> anyhow::Result<Printout> {
    match command {
        ApiKeyCommand::Add { name } => add(pool, who, name).await,
        ApiKeyCommand::List => list(pool, who).await,
        ApiKeyCommand::Revoke { name } => revoke(pool, who, name).await,
    }
}

async fn add(pool: &PgPool, who: Option<&str>, name: &str) -> anyhow::Result<Printout> {
    // The same rule as operators' names (the table checks it too).
    if !valid_name(name) {
        return Ok(Printout::refused(
            "INVALID_API_KEY_NAME",
            format!(
                "{} is not a key name: lower case letters, digits and . _ @ -, starting with a letter or digit, at most 64",
                Shown(name)
            ),
            json!({"name": name}),
        ));
    }
    let key = api_keys::key_text(&random_bytes::<32>());
    let mut tx = pool.begin().await?;
    if !api_keys::add(&mut tx, name, &api_keys::hash(&key), who).await? {
        return Ok(Printout::refused(
            "API_KEY_EXISTS",
            format!("a key named {name} exists (or existed) already; choose another name"),
            json!({"name": name}),
        ));
    }
    audit_log::record(
        &mut *tx,
        Entry {
            operator: who,
            reason: None,
            command: "api-key add",
            arguments: json!({"name": name}),
            result: json!({"changed": true}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Printout::done(
        json!({"name": name, "key": key, "changed": true}),
        format!(
            "added the API key {name} (shown once; give it to the service that spends for users):\n{key}\n"
        ),
    ))
}

async fn list(pool: &PgPool, who: Option<&str>) -> anyhow::Result<Printout> {
    let rows = api_keys::list(pool).await?;
    audit_log::record(
        pool,
        Entry {
            operator: who,
            reason: None,
            command: "api-key list",
            arguments: json!({}),
            result: json!({"listed": rows.len()}),
        },
    )
    .await?;
    let mut text = format!("{} API keys\n", rows.len());
    let mut listed = Vec::with_capacity(rows.len());
    for row in &rows {
        writeln!(
            text,
            "{}\tadded {} by {}{}",
            row.name,
            row.created_at.to_rfc3339(),
            Shown(row.created_by.as_deref().unwrap_or("-")),
            match &row.revoked_at {
                Some(at) => format!(
                    "\trevoked {} by {}",
                    at.to_rfc3339(),
                    Shown(row.revoked_by.as_deref().unwrap_or("-"))
                ),
                None => String::new(),
            }
        )?;
        listed.push(json!({
            "name": row.name,
            "createdAt": row.created_at,
            "createdBy": row.created_by,
            "revokedAt": row.revoked_at,
            "revokedBy": row.revoked_by,
        }));
    }
    Ok(Printout::done(json!({"apiKeys": listed}), text))
}

async fn revoke(pool: &PgPool, who: Option<&str>, name: &str) -> anyhow::Result<Printout> {
    let mut tx = pool.begin().await?;
    if !api_keys::revoke(&mut tx, name, who).await? {
        return Ok(Printout::refused(
            "API_KEY_NOT_FOUND",
            format!("no live API key named {}; nothing changed", Shown(name)),
            json!({"name": name}),
        ));
    }
    audit_log::record(
        &mut *tx,
        Entry {
            operator: who,
            reason: None,
            command: "api-key revoke",
            arguments: json!({"name": name}),
            result: json!({"changed": true}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Printout::done(
        json!({"name": name, "changed": true}),
        format!("revoked {name}; requests with it are refused from now on\n"),
    ))
}
