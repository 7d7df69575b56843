//! The operator's audit trail (`operator_actions`): who ran which command,
//! why, with what arguments, and what it changed (`ledgerhook-admin`
//! writes it).
//!
//! A command that changes something writes its row in the transaction of
//! the change, so the change and its record commit together or not at all.

use serde_json::Value;
use sqlx::PgExecutor;

/// One command run, as recorded.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub operator: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub command: &'a str,
    pub arguments: Value,
    pub result: Value,
}

/// Records `entry`; returns its id.
pub async fn record<'e>(
    executor: impl PgExecutor<'e>,
    entry: Entry<'_>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "insert into operator_actions (operator, reason, command, arguments, result)
         values ($1, $2, $3, $4, $5) returning id",
    )
    .bind(entry.operator)
    .bind(entry.reason)
    .bind(entry.command)
    .bind(entry.arguments)
    .bind(entry.result)
    .fetch_one(executor)
    .await
}
