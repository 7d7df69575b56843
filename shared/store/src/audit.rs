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

/// One audit row as listed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    pub id: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub operator: Option<String>,
    pub reason: Option<String>,
    pub command: String,
    pub arguments: Value,
    pub result: Value,
}

/// Which audit rows to list.
#[derive(Debug, Clone, Copy)]
pub enum About<'a> {
    /// Every row.
    All,
    /// Rows whose arguments name this order (its provider's id).
    Order(&'a str),
    /// Rows whose arguments name this user.
    User(&'a str),
}

/// Audit rows older than `before` (all when `None`), newest first, at most
/// `limit`; by the primary key, or the expression indexes on the arguments'
/// `order` and `user`.
pub async fn page(
    pool: &sqlx::PgPool,
    about: About<'_>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Row>, sqlx::Error> {
    let (condition, value) = match about {
        About::All => ("true", None),
        About::Order(order) => (
            "arguments ? 'order' and arguments ->> 'order' = $3",
            Some(order),
        ),
        About::User(user) => (
            "arguments ? 'user' and arguments ->> 'user' = $3",
            Some(user),
        ),
    };
    sqlx::query_as(&format!(
        "select id, at, operator, reason, command, arguments, result from operator_actions
         where id < coalesce($1, 9223372036854775807) and ($3::text is null or true) and {condition}
         order by id desc limit $2"
    ))
    .bind(before)
    .bind(limit)
    .bind(value)
    .fetch_all(pool)
    .await
}

/// Replaces `user` by `pseudonym` in the audit trail (erasure): every JSON
/// string in the arguments or the result that is exactly the user's id,
/// and the id in those rows' reasons. Rows are not removed: what was done
/// stays recorded, under the pseudonym. Reads the whole trail (erasure is
/// rare; the `user` index covers only the arguments' top level). Returns
/// the rows changed.
pub async fn rekey_user(
    tx: &mut sqlx::PgConnection,
    user: &str,
    pseudonym: &str,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "update operator_actions
         set arguments = replace(arguments::text, to_jsonb($1::text)::text,
                                 to_jsonb($2::text)::text)::jsonb,
             result = replace(result::text, to_jsonb($1::text)::text,
                              to_jsonb($2::text)::text)::jsonb,
             reason = replace(reason, $1, $2)
         where strpos(arguments::text, to_jsonb($1::text)::text) > 0
            or strpos(result::text, to_jsonb($1::text)::text) > 0",
    )
    .bind(user)
    .bind(pseudonym)
    .execute(&mut *tx)
    .await?
    .rows_affected())
}
