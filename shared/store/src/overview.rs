//! The console's overview: what the newest deliveries and ledger entries
//! say about the last minutes. Bounded on purpose: each read looks at the
//! newest `sample` rows by primary key, never at a whole table, so the
//! overview costs the same on a day-old system and a year-old one.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// The newest deliveries, counted by outcome.
#[derive(Debug, Clone, Default)]
pub struct Recent {
    /// Rows looked at (at most the sample asked for).
    pub rows: i64,
    /// The oldest and newest of them: the span they cover.
    pub oldest: Option<DateTime<Utc>>,
    pub newest: Option<DateTime<Utc>>,
    /// `(outcome, count)`, `unprocessed` for rows not processed yet.
    pub by_outcome: Vec<(String, i64)>,
}

pub async fn recent_deliveries(pool: &PgPool, sample: i64) -> Result<Recent, sqlx::Error> {
    let counted: Vec<(String, i64, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "select coalesce(outcome, 'unprocessed'), count(*), min(received_at), max(received_at)
         from (select outcome, received_at from webhook_deliveries order by id desc limit $1) r
         group by 1 order by 2 desc",
    )
    .bind(sample)
    .fetch_all(pool)
    .await?;
    Ok(Recent {
        rows: counted.iter().map(|c| c.1).sum(),
        oldest: counted.iter().map(|c| c.2).min(),
        newest: counted.iter().map(|c| c.3).max(),
        by_outcome: counted.into_iter().map(|(o, n, _, _)| (o, n)).collect(),
    })
}

/// The newest ledger entries, counted by kind, with their credits.
pub async fn recent_ledger(
    pool: &PgPool,
    sample: i64,
) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "select kind, count(*), sum(credits)::int8
         from (select kind, credits from credit_ledger order by id desc limit $1) r
         group by 1 order by 2 desc",
    )
    .bind(sample)
    .fetch_all(pool)
    .await
}
