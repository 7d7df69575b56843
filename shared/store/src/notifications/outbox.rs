//! The notifier's side of the outbox: claiming due rows, recording how each
//! attempt ended, and the counts behind the gauges and the alert.
//!
//! A claim is a lease, not a held transaction: claiming moves the rows'
//! `next_attempt_at` past the lease (rows locked with `skip locked`, so any
//! number of notifiers share the table without taking the same row), then
//! the sends happen with no transaction open. A notifier that dies
//! mid-send leaves its rows to be claimed again once the lease runs out.
//! The lease covers a whole round, not one send: the notifier sends a
//! claim's rows a few at a time, each bounded by the send timeout, and
//! records each outcome as soon as that send ends, so the last row of a
//! claim is recorded within `send timeout x ceil(batch / concurrency)` plus
//! the record's own bound; the notifier's lease is that plus a margin
//! (checked at start, `ledgerhook_notifier::config`). So a live notifier
//! never loses its lease to another.

use std::time::Duration;

use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use ledgerhook_domain::Channel;

/// The batch grant's common table expression on `notifications`: `notices`,
/// one row per grant and configured channel (`$22` channels, `$23` orders,
/// `$24` recipients, `$25` facts), for `ledger::writes` to compose into its
/// one statement. The id is derived from (order, channel): one message per
/// order and channel, and `on conflict` because a notification must never
/// be what fails a grant.
macro_rules! batch_notice_cte {
    () => {
        "notices as (
             insert into notifications (id, channel, order_id, recipient, facts)
             select md5(order_id::text || '/' || channel)::uuid, channel, order_id, recipient, facts
             from unnest($22::text[], $23::uuid[], $24::text[], $25::jsonb[])
                  as n(channel, order_id, recipient, facts)
             on conflict (id) do nothing
         )"
    };
}
pub(crate) use batch_notice_cte;

/// The longest `last_error` kept; a chat service's error page is not needed whole.
const MAX_ERROR_LEN: usize = 500;

/// A row claimed for sending.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub id: Uuid,
    /// `None` for a channel name this build does not know (a newer
    /// writer's); such a row is parked, not sent.
    pub channel: Option<Channel>,
    pub recipient: Option<String>,
    /// [`super::GrantFacts`] as JSON.
    pub facts: Value,
    /// Attempts before this one.
    pub attempts: i32,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Failed; try again after `delay`.
    Retry {
        delay: Duration,
        error: String,
    },
    /// Failed for good (attempts spent, or a failure no retry can fix).
    Park {
        error: String,
    },
}

impl Outcome {
    /// Every [`Self::label`], so each can be counted from zero.
    pub const LABELS: [&'static str; 3] = ["sent", "retried", "parked"];

    /// The metric label and the stored kind.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Retry { .. } => "retried",
            Self::Park { .. } => "parked",
        }
    }
}

/// Claims up to `limit` due rows of the given channels for `lease`, oldest
/// due first.
pub async fn claim_due(
    pool: &PgPool,
    channels: &[&str],
    limit: i64,
    lease: Duration,
) -> Result<Vec<Claimed>, sqlx::Error> {
    let rows: Vec<(Uuid, String, Option<String>, Value, i32)> = sqlx::query_as(
        "update notifications n
         set next_attempt_at = now() + $3 * interval '1 millisecond'
         from (
             select id from notifications
             where sent_at is null and parked_at is null
               and next_attempt_at <= now() and channel = any($1)
             order by next_attempt_at
             limit $2
             for update skip locked
         ) due
         where n.id = due.id
         returning n.id, n.channel, n.recipient, n.facts, n.attempts",
    )
    .bind(channels)
    .bind(limit)
    .bind(millis(lease))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, channel, recipient, facts, attempts)| Claimed {
            id,
            channel: Channel::parse(&channel),
            recipient,
            facts,
            attempts,
        })
        .collect())
}

/// Records how each claimed row's attempt ended, in one statement. A row
/// already marked sent (by a notifier whose lease had run out, say) stays
/// as it is.
pub async fn settle(pool: &PgPool, outcomes: &[(Uuid, Outcome)]) -> Result<(), sqlx::Error> {
    if outcomes.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(outcomes.len());
    let mut labels = Vec::with_capacity(outcomes.len());
    let mut delays = Vec::with_capacity(outcomes.len());
    let mut errors = Vec::with_capacity(outcomes.len());
    for (id, outcome) in outcomes {
        ids.push(*id);
        labels.push(outcome.label());
        let (delay, error) = match outcome {
            Outcome::Sent => (0, None),
            Outcome::Retry { delay, error } => (millis(*delay), Some(truncate(error))),
            Outcome::Park { error } => (0, Some(truncate(error))),
        };
        delays.push(delay);
        errors.push(error);
    }
    sqlx::query(
        "update notifications n
         set attempts = n.attempts + 1,
             sent_at = case when u.outcome = 'sent' then now() end,
             parked_at = case when u.outcome = 'parked' then now() end,
             next_attempt_at = case when u.outcome = 'retried'
                 then now() + u.delay_ms * interval '1 millisecond'
                 else n.next_attempt_at end,
             last_error = coalesce(u.error, n.last_error)
         from unnest($1::uuid[], $2::text[], $3::int8[], $4::text[])
              as u(id, outcome, delay_ms, error)
         where n.id = u.id and n.sent_at is null and n.parked_at is null",
    )
    .bind(&ids)
    .bind(&labels)
    .bind(&delays)
    .bind(&errors)
    .execute(pool)
    .await?;
    Ok(())
}

/// Parks the due rows of channels this notifier cannot send, each with its
/// reason; returns how many. Only due rows: one another notifier has
/// claimed (its lease in the future) is left to that notifier.
pub async fn park_due(pool: &PgPool, reasons: &[(Channel, String)]) -> Result<u64, sqlx::Error> {
    if reasons.is_empty() {
        return Ok(0);
    }
    let channels: Vec<&str> = reasons.iter().map(|(c, _)| c.as_str()).collect();
    let errors: Vec<String> = reasons.iter().map(|(_, r)| truncate(r)).collect();
    let done = sqlx::query(
        "update notifications n
         set parked_at = now(), last_error = u.reason
         from unnest($1::text[], $2::text[]) as u(channel, reason)
         where n.channel = u.channel and n.sent_at is null and n.parked_at is null
           and n.next_attempt_at <= now()",
    )
    .bind(&channels)
    .bind(&errors)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Rows waiting to be sent (due or backing off) and rows parked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub pending: i64,
    pub parked: i64,
}

/// Both counts, each from its partial index.
pub async fn counts(pool: &PgPool) -> Result<Counts, sqlx::Error> {
    let (pending, parked): (i64, i64) = sqlx::query_as(
        "select
             (select count(*) from notifications where sent_at is null and parked_at is null),
             (select count(*) from notifications where parked_at is not null)",
    )
    .fetch_one(pool)
    .await?;
    Ok(Counts { pending, parked })
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn truncate(error: &str) -> String {
    match error.char_indices().nth(MAX_ERROR_LEN) {
        Some((end, _)) => format!("{}...", &error[..end]),
        None => error.to_owned(),
    }
    .replace('\0', "")
}
