//! `ledgerhook-admin operator add|list|remove`: who may sign in to the
//! console. `add` prints the one-time password once; only its hash is
//! stored (`ledgerhook_store::operators`). Each change commits with its
//! audit row.

use std::fmt::Write as _;

use ledgerhook_store::audit::{self as audit_log, Entry};
use ledgerhook_store::operators::{self, Role};
use serde_json::json;
use sqlx::PgPool;

use crate::Printout;
use crate::cli::{ConsoleRole, OperatorCommand};
use crate::password;
use crate::terminal::Shown;

pub async fn run(
    pool: &PgPool,
    who: Option<&str>,
    command: &OperatorCommand,
) -> anyhow::Result<Printout> {
    match command {
        OperatorCommand::Add { name, role } => {
            let role = match role {
                ConsoleRole::Viewer => Role::Viewer,
                ConsoleRole::Operator => Role::Operator,
            };
            add(pool, who, name, role).await
        }
        OperatorCommand::List => list(pool, who).await,
        OperatorCommand::Remove { name } => remove(pool, who, name).await,
    }
}

/// Whether `name` is a name the console accepts (the table checks the same).
pub fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes.iter().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'@' | b'-')
        })
}

async fn add(pool: &PgPool, who: Option<&str>, name: &str, role: Role) -> anyhow::Result<Printout> {
    if !valid_name(name) {
        return Ok(Printout::refused(
            "INVALID_OPERATOR_NAME",
            format!(
                "{} is not an operator name: lower case letters, digits and . _ @ -, starting with a letter or digit, at most 64",
                Shown(name)
            ),
            json!({"name": name}),
        ));
    }
    let one_time = password::one_time();
    let hash = password::hash(&one_time)?;
    let mut tx = pool.begin().await?;
    let added = operators::add(&mut tx, name, role, &hash, who).await?;
    if !added {
        return Ok(Printout::refused(
            "OPERATOR_EXISTS",
            format!("an operator named {name} exists already; nothing changed"),
            json!({"name": name}),
        ));
    }
    audit_log::record(
        &mut *tx,
        Entry {
            operator: who,
            reason: None,
            command: "operator add",
            arguments: json!({"name": name, "role": role}),
            // Never the password, not even in the audit trail.
            result: json!({"changed": true}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Printout::done(
        json!({"name": name, "role": role, "oneTimePassword": one_time, "changed": true}),
        format!(
            "added {name} as {}\none-time password (shown once; the console asks for a new one at the first sign-in):\n{one_time}\n",
            role.as_str()
        ),
    ))
}

async fn list(pool: &PgPool, who: Option<&str>) -> anyhow::Result<Printout> {
    let rows = operators::list(pool).await?;
    audit_log::record(
        pool,
        Entry {
            operator: who,
            reason: None,
            command: "operator list",
            arguments: json!({}),
            result: json!({"listed": rows.len()}),
        },
    )
    .await?;
    let mut text = format!("{} operators\n", rows.len());
    for row in &rows {
        writeln!(
            text,
            "{}\t{}\t{} sessions\tadded {} by {}{}",
            row.name,
            row.role,
            row.sessions,
            row.created_at.to_rfc3339(),
            Shown(row.created_by.as_deref().unwrap_or("-")),
            if row.must_change_password {
                "\t(one-time password not yet replaced)"
            } else {
                ""
            }
        )?;
    }
    Ok(Printout::done(json!({"operators": rows}), text))
}

async fn remove(pool: &PgPool, who: Option<&str>, name: &str) -> anyhow::Result<Printout> {
    let mut tx = pool.begin().await?;
    if !operators::remove(&mut tx, name).await? {
        return Ok(Printout::refused(
            "OPERATOR_NOT_FOUND",
            format!("no operator named {}; nothing changed", Shown(name)),
            json!({"name": name}),
        ));
    }
    audit_log::record(
        &mut *tx,
        Entry {
            operator: who,
            reason: None,
            command: "operator remove",
            arguments: json!({"name": name}),
            result: json!({"changed": true}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Printout::done(
        json!({"name": name, "changed": true}),
        format!("removed {name}; their console sessions have ended\n"),
    ))
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn operator_names_are_short_lower_case_and_plain() {
        for ok in ["alice", "ops@example", "a.b_c-d", "0day"] {
            assert!(valid_name(ok), "{ok}");
        }
        let long = "a".repeat(65);
        for bad in [
            "",
            "Alice",
            "-x",
            "a b",
            "ä",
            "a\u{0}b",
            "a/b",
            long.as_str(),
        ] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }
}
