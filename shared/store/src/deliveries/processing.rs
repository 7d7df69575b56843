//! What the worker reads and notes on deliveries outside its grant
//! statement (see the module doc for that one).

use std::collections::HashMap;

use sqlx::{PgConnection, PgPool};

/// The batch grant's last clause: each delivery's `processed_at` and
/// outcome (`$18` rows, `$19` outcomes, `$20` details), in the statement
/// that commits its effects, for `ledger::writes` to compose. `$27` and
/// `$28` are the lowest and highest of the rows: the range is what prunes
/// the update to the batch's month when the statement starts (without it
/// every month's partition is opened and made ready for the update, by
/// every batch, as in [`lock_fresh`]).
macro_rules! batch_mark_processed {
    () => {
        "update webhook_deliveries d
         set processed_at = now(), outcome = u.outcome, outcome_detail = u.detail
         from unnest($18::int8[], $19::text[], $20::text[]) as u(id, outcome, detail)
         where d.id = u.id and d.id between $27 and $28"
    };
}
pub(crate) use batch_mark_processed;

/// Locks the delivery rows `rows` (in id order, so concurrent batches do not
/// deadlock) for the rest of the transaction; for each row found, whether it
/// is still unprocessed.
pub async fn lock_fresh(
    tx: &mut PgConnection,
    rows: &[i64],
) -> Result<HashMap<i64, bool>, sqlx::Error> {
    let mut rows = rows.to_vec();
    rows.sort_unstable();
    rows.dedup();
    let (Some(&lowest), Some(&highest)) = (rows.first(), rows.last()) else {
        return Ok(HashMap::new());
    };
    // The bounds are what prunes: `id = any($1)` alone is not (with a
    // generic plan every month's partition would be probed for every
    // row); a range on the partition key leaves the one or two months the
    // batch's rows are in, decided at executor start-up.
    let found: Vec<(i64, bool)> = sqlx::query_as(
        "select id, processed_at is null from webhook_deliveries
         where id = any($1) and id between $2 and $3 order by id for update",
    )
    .bind(&rows)
    .bind(lowest)
    .bind(highest)
    .fetch_all(&mut *tx)
    .await?;
    Ok(found.into_iter().collect())
}

/// Marks deliveries the worker gave up on (`rows`, each with its reason),
/// so an operator finds them in the database as well as in the parked
/// queue. A delivery already processed otherwise keeps its outcome.
pub async fn mark_parked(pool: &PgPool, rows: &[i64], reasons: &[&str]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update webhook_deliveries d
         set processed_at = coalesce(d.processed_at, now()), outcome = 'parked',
             outcome_detail = p.reason
         from unnest($1::int8[], $2::text[]) as p(id, reason)
         where d.id = p.id and (d.outcome is null or d.outcome = 'parked')",
    )
    .bind(rows)
    .bind(reasons)
    .execute(pool)
    .await?;
    Ok(())
}

/// Marks one delivery processed with its outcome, in the caller's
/// transaction (a reversal's, which commits its effects with it).
pub async fn mark_processed(
    tx: &mut PgConnection,
    delivery_row: i64,
    outcome: &str,
    detail: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update webhook_deliveries set processed_at = now(), outcome = $2, outcome_detail = $3
         where id = $1",
    )
    .bind(delivery_row)
    .bind(outcome)
    .bind(detail)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Whether the worker is behind, looking at the newest `window` deliveries:
/// one of them unprocessed for longer than `max_age_secs`, or all of them
/// unprocessed (the backlog then goes further back than the window, so its
/// true age is unknown). What the payment timeout job waits on.
pub async fn backlog_behind(
    pool: &PgPool,
    window: i64,
    max_age_secs: i64,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "select coalesce(min(received_at) filter (where processed_at is null)
                             < now() - make_interval(secs => $2::int8), false)
                or (count(*) = $1 and count(*) filter (where processed_at is null) = $1)
         from (select received_at, processed_at from webhook_deliveries
               order by id desc limit $1) newest",
    )
    .bind(window)
    .bind(max_age_secs)
    .fetch_one(pool)
    .await
}
