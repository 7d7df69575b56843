//! Dropping what is personal in notifications: the recipient's address,
//! the last error (a mail server's answer may quote it) and the user's id
//! among the facts. The row, its order, channel, times and attempts stay.
//!
//! Retention scrubs sent notifications only ([`sent_before`]): one waiting
//! or parked is still to be sent or looked at. Erasure scrubs every
//! notification of the user's orders ([`of_orders`]), and an email not sent
//! yet is parked instead of going out to a person who asked to be erased.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// Scrubs up to `limit` notifications sent before `horizon`, the oldest
/// first (`notifications_unscrubbed_sent_idx`); returns how many. With
/// `dry_run`, counts every one that would be, and changes nothing.
pub async fn sent_before(
    conn: &mut PgConnection,
    horizon: DateTime<Utc>,
    limit: i64,
    dry_run: bool,
) -> Result<i64, sqlx::Error> {
    if dry_run {
        return sqlx::query_scalar(
            "select count(*) from notifications
             where scrubbed_at is null and sent_at is not null and sent_at < $1",
        )
        .bind(horizon)
        .fetch_one(&mut *conn)
        .await;
    }
    sqlx::query_scalar(
        "with picked as (
             select id from notifications
             where scrubbed_at is null and sent_at is not null and sent_at < $1
             order by sent_at limit $2
             for update skip locked
         ), scrubbed as (
             update notifications n
             set recipient = null, last_error = null, facts = n.facts - 'userId',
                 scrubbed_at = now()
             from picked p where n.id = p.id
             returning n.id
         )
         select count(*) from scrubbed",
    )
    .bind(horizon)
    .bind(limit)
    .fetch_one(&mut *conn)
    .await
}

/// Scrubs every notification of `orders` (erasure, in the caller's
/// transaction), sent or not, with the user's id in the facts replaced by
/// `pseudonym`; an email still waiting is parked, so it is never sent.
/// Returns how many.
pub async fn of_orders(
    conn: &mut PgConnection,
    orders: &[Uuid],
    pseudonym: &str,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "update notifications
         set recipient = null,
             last_error = case when sent_at is null and parked_at is null and channel = 'email'
                               then 'not sent: its recipient was erased' end,
             facts = case when facts ? 'userId'
                          then jsonb_set(facts, '{userId}', to_jsonb($2::text))
                          else facts end,
             parked_at = case when sent_at is null and parked_at is null and channel = 'email'
                              then now() else parked_at end,
             scrubbed_at = now()
         where order_id = any($1)",
    )
    .bind(orders)
    .bind(pseudonym)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}
