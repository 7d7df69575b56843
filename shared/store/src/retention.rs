//! Retention's one-at-a-time lock. A run makes and drops partitions, which
//! two runs at once would trip over (both creating next month's), and
//! walks the whole table, which two runs would do twice for nothing; so a
//! run holds a session-level advisory lock on its connection, and a run
//! that finds it taken does nothing. A run that dies releases it with its
//! connection.
//!
//! What a run does is the owners' statements: `deliveries::partitions`,
//! `deliveries::scrub`, `notifications::scrub`.

use sqlx::PgConnection;

/// The advisory lock's key: the payment-intent locks (`ledger::orders`)
/// are hashes of `pi_...` texts; this is the hash of a name none of them
/// can be.
const LOCK_NAME: &str = "ledgerhook:retention";

/// Takes the lock on `conn` if no other run holds it.
pub async fn try_lock(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("select pg_try_advisory_lock(hashtextextended($1, 0))")
        .bind(LOCK_NAME)
        .fetch_one(&mut *conn)
        .await
}

/// Releases the lock taken by [`try_lock`] on the same connection.
pub async fn unlock(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("select pg_advisory_unlock(hashtextextended($1, 0))")
        .bind(LOCK_NAME)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
