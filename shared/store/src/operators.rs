//! Who may use the console, and their sessions: `console_operators` and
//! `console_sessions`. `ledgerhook-admin operator` adds, lists and removes
//! operators; the console signs them in and out. Passwords arrive here
//! hashed, session tokens as their SHA-256: neither is ever stored in the
//! clear.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// What an operator may do in the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Looks, never acts.
    Viewer,
    /// Looks and acts (grants, releases, redrives, pauses).
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "viewer" => Some(Self::Viewer),
            "operator" => Some(Self::Operator),
            _ => None,
        }
    }
}

/// An operator as listed (never their hash).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct OperatorRow {
    pub name: String,
    pub role: String,
    pub must_change_password: bool,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<String>,
    /// Sessions not yet signed out or removed (some may be past their
    /// timeout).
    pub sessions: i64,
}

/// What signing in needs to know of an operator.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Credentials {
    pub role: String,
    pub password_hash: String,
    pub must_change_password: bool,
    /// When the operator was added: a one-time password's age.
    pub created_at: DateTime<Utc>,
}

/// Adds an operator with a hashed one-time password; false when the name
/// is taken (nothing changed).
pub async fn add(
    tx: &mut sqlx::PgConnection,
    name: &str,
    role: Role,
    password_hash: &str,
    created_by: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let added = sqlx::query(
        "insert into console_operators (name, role, password_hash, created_by)
         values ($1, $2, $3, $4) on conflict (name) do nothing",
    )
    .bind(name)
    .bind(role.as_str())
    .bind(password_hash)
    .bind(created_by)
    .execute(&mut *tx)
    .await?;
    Ok(added.rows_affected() == 1)
}

pub async fn list(pool: &PgPool) -> Result<Vec<OperatorRow>, sqlx::Error> {
    sqlx::query_as(
        "select o.name, o.role, o.must_change_password, o.created_at, o.created_by,
                (select count(*) from console_sessions s where s.operator = o.name) as sessions
         from console_operators o order by o.name",
    )
    .fetch_all(pool)
    .await
}

/// Removes an operator and every session of theirs; false when there was
/// none by that name.
pub async fn remove(tx: &mut sqlx::PgConnection, name: &str) -> Result<bool, sqlx::Error> {
    let removed = sqlx::query("delete from console_operators where name = $1")
        .bind(name)
        .execute(&mut *tx)
        .await?;
    Ok(removed.rows_affected() == 1)
}

pub async fn credentials(pool: &PgPool, name: &str) -> Result<Option<Credentials>, sqlx::Error> {
    sqlx::query_as(
        "select role, password_hash, must_change_password, created_at
         from console_operators where name = $1",
    )
    .bind(name)
    .fetch_optional(pool)
    .await
}

/// The operator's role, if there is one by that name (a proxy's user).
pub async fn role_of(pool: &PgPool, name: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("select role from console_operators where name = $1")
        .bind(name)
        .fetch_optional(pool)
        .await
}

/// Replaces the password (the one-time one, at the first sign-in) in the
/// caller's transaction (with its audit row), and ends every other session
/// of the operator's.
pub async fn set_password(
    tx: &mut sqlx::PgConnection,
    name: &str,
    password_hash: &str,
    keep_session: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update console_operators set password_hash = $2, must_change_password = false
         where name = $1",
    )
    .bind(name)
    .bind(password_hash)
    .execute(&mut *tx)
    .await?;
    sqlx::query("delete from console_sessions where operator = $1 and token_hash <> $2")
        .bind(name)
        .bind(keep_session)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// A live session as the console reads it on every request.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Session {
    pub operator: String,
    pub role: String,
    pub csrf_token: String,
    pub must_change_password: bool,
    /// Opened for a trusted proxy's user: valid only with the proxy's secret.
    pub via_proxy: bool,
}

/// Starts a session; removes every session that timed out, so the table
/// holds only what may still be used.
pub async fn open_session(
    pool: &PgPool,
    token_hash: &[u8],
    operator: &str,
    csrf_token: &str,
    timeouts: SessionTimeouts,
    via_proxy: bool,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "delete from console_sessions
         where last_seen_at < now() - make_interval(secs => $1)
            or created_at < now() - make_interval(secs => $2)",
    )
    .bind(timeouts.idle.as_secs_f64())
    .bind(timeouts.lifetime.as_secs_f64())
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "insert into console_sessions (token_hash, operator, csrf_token, via_proxy)
         values ($1, $2, $3, $4)",
    )
    .bind(token_hash)
    .bind(operator)
    .bind(csrf_token)
    .bind(via_proxy)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// How long a session lives: `idle` since its last request, `lifetime`
/// since sign-in, whichever ends first.
#[derive(Debug, Clone, Copy)]
pub struct SessionTimeouts {
    pub idle: Duration,
    pub lifetime: Duration,
}

/// The session with this token, if it is live; marks it seen (at most once
/// a minute, so a busy page is not a write per request) unless `passive`
/// (a page refreshing itself, which must not keep an unattended browser's
/// session alive).
pub async fn session(
    pool: &PgPool,
    token_hash: &[u8],
    timeouts: SessionTimeouts,
    passive: bool,
) -> Result<Option<Session>, sqlx::Error> {
    sqlx::query_as(
        "with live as (
             select s.token_hash from console_sessions s
             where s.token_hash = $1
               and s.last_seen_at >= now() - make_interval(secs => $2)
               and s.created_at >= now() - make_interval(secs => $3)
         ), seen as (
             update console_sessions s set last_seen_at = now()
             from live where s.token_hash = live.token_hash
               and s.last_seen_at < now() - interval '1 minute' and not $4
         )
         select s.operator, o.role, s.csrf_token, o.must_change_password, s.via_proxy
         from console_sessions s
         join live on live.token_hash = s.token_hash
         join console_operators o on o.name = s.operator",
    )
    .bind(token_hash)
    .bind(timeouts.idle.as_secs_f64())
    .bind(timeouts.lifetime.as_secs_f64())
    .bind(passive)
    .fetch_optional(pool)
    .await
}

/// Ends a session (signing out).
pub async fn close_session(pool: &PgPool, token_hash: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query("delete from console_sessions where token_hash = $1")
        .bind(token_hash)
        .execute(pool)
        .await?;
    Ok(())
}
