//! `subscriptions`: each subscription's state as its provider's events tell
//! it (status, plan, current period, customer), for the user to read and
//! for the ledger to stop granting once one has ended. The one owner of
//! the table. A subscription's credits are its paid periods' orders
//! (`payment_orders.subscription_id`).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use ledgerhook_domain::SubscriptionChange;

use crate::deliveries;
use crate::ledger::{Applied, ApplyError};

fn at(seconds: Option<i64>) -> Option<DateTime<Utc>> {
    seconds.and_then(|s| DateTime::from_timestamp(s, 0))
}

/// Applies one change in its own transaction: the delivery is locked and
/// must be unprocessed; the row takes the change unless a newer event was
/// applied already (events arrive in any order); the delivery is marked.
pub async fn apply_change(
    pool: &PgPool,
    delivery_row: i64,
    change: &SubscriptionChange,
) -> Result<Applied, ApplyError> {
    let mut tx = pool.begin().await?;
    match deliveries::processing::lock_fresh(&mut tx, &[delivery_row])
        .await?
        .get(&delivery_row)
    {
        None => return Err(ApplyError::DeliveryMissing(delivery_row)),
        Some(false) => return Ok(Applied::AlreadyProcessed),
        Some(true) => {}
    }
    let applied = match (&change.user_id, &change.plan_id) {
        (Some(user_id), Some(plan_id)) => {
            let taken = upsert(&mut tx, change, user_id, plan_id).await?;
            Applied::Recorded {
                anomaly: (!taken).then_some("an older subscription change, arriving late"),
                payment_failed: false,
            }
        }
        _ => Applied::Ignored {
            reason: "subscription without our userId and planId",
        },
    };
    deliveries::processing::mark_processed(
        &mut tx,
        delivery_row,
        applied.outcome(),
        crate::ledger::writes::detail(&applied).as_deref(),
    )
    .await?;
    tx.commit().await?;
    Ok(applied)
}

/// Writes the change unless a newer one is there; whether it was taken.
async fn upsert(
    tx: &mut PgConnection,
    change: &SubscriptionChange,
    user_id: &str,
    plan_id: &str,
) -> Result<bool, sqlx::Error> {
    let written: Option<String> = sqlx::query_scalar(
        "insert into subscriptions as s
             (id, user_id, plan_id, status, customer_id, current_period_start,
              current_period_end, cancel_at_period_end, canceled_at, event_created_at,
              item_id, product_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         on conflict (id) do update
             set user_id = excluded.user_id, plan_id = excluded.plan_id,
                 status = excluded.status,
                 customer_id = coalesce(excluded.customer_id, s.customer_id),
                 item_id = coalesce(excluded.item_id, s.item_id),
                 product_id = coalesce(excluded.product_id, s.product_id),
                 current_period_start = coalesce(excluded.current_period_start, s.current_period_start),
                 current_period_end = coalesce(excluded.current_period_end, s.current_period_end),
                 cancel_at_period_end = excluded.cancel_at_period_end,
                 canceled_at = coalesce(excluded.canceled_at, s.canceled_at),
                 event_created_at = excluded.event_created_at, updated_at = now()
             where s.event_created_at <= excluded.event_created_at
         returning id",
    )
    .bind(&change.subscription_id)
    .bind(user_id)
    .bind(plan_id)
    .bind(&change.status)
    .bind(&change.customer_id)
    .bind(at(change.current_period_start))
    .bind(at(change.current_period_end))
    .bind(change.cancel_at_period_end)
    .bind(at(change.canceled_at))
    .bind(at(Some(change.event_created)).unwrap_or_else(Utc::now))
    .bind(&change.item_id)
    .bind(&change.product_id)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(written.is_some())
}

/// Those of `ids` that have ended (canceled): their invoices grant nothing.
pub(crate) async fn ended(tx: &mut PgConnection, ids: &[&str]) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "select id from subscriptions
         where id = any($1) and status in ('canceled', 'incomplete_expired')",
    )
    .bind(ids)
    .fetch_all(&mut *tx)
    .await
}

/// Marks `ids` past due (their renewal's payment failed), unless they have
/// ended.
pub(crate) async fn mark_past_due(tx: &mut PgConnection, ids: &[&str]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update subscriptions set status = 'past_due', updated_at = now()
         where id = any($1) and status not in ('canceled', 'incomplete_expired', 'past_due')",
    )
    .bind(ids)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A user's subscription, with what its paid periods granted.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserSubscription {
    pub id: String,
    pub plan_id: String,
    pub status: String,
    pub current_period_start: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    pub canceled_at: Option<DateTime<Utc>>,
    /// Paid periods granted, and their credits (less nothing: take-backs
    /// show in the ledger).
    pub periods_paid: i64,
    pub credits_granted: i64,
    #[serde(skip)]
    pub customer_id: Option<String>,
    #[serde(skip)]
    pub item_id: Option<String>,
    #[serde(skip)]
    pub product_id: Option<String>,
}

/// The user's subscriptions, newest first.
pub async fn of_user(pool: &PgPool, user_id: &str) -> Result<Vec<UserSubscription>, sqlx::Error> {
    sqlx::query_as(
        "select s.id, s.plan_id, s.status, s.current_period_start, s.current_period_end,
                s.cancel_at_period_end, s.canceled_at, s.customer_id, s.item_id, s.product_id,
                (select count(*) from payment_orders o
                 where o.subscription_id = s.id and o.status = 'completed') as periods_paid,
                coalesce((select sum(l.credits) from payment_orders o
                          join credit_ledger l on l.order_id = o.id and l.kind = 'purchase_grant'
                          where o.subscription_id = s.id), 0)::int8 as credits_granted
         from subscriptions s where s.user_id = $1
         order by s.created_at desc",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await
}

/// How many subscriptions `user` has, and how many of them are still alive
/// (anything but `canceled` and `incomplete_expired`): a period paid after
/// an erasure would belong to no one, so erasure waits for them to end.
pub async fn count_of(tx: &mut PgConnection, user: &str) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "select count(*),
                count(*) filter (where status not in ('canceled', 'incomplete_expired'))
         from subscriptions where user_id = $1",
    )
    .bind(user)
    .fetch_one(&mut *tx)
    .await
}

/// Re-keys `user`'s subscriptions to `pseudonym` (erasure); returns how many.
pub async fn rekey_user(
    tx: &mut PgConnection,
    user: &str,
    pseudonym: &str,
) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("update subscriptions set user_id = $2, updated_at = now() where user_id = $1")
            .bind(user)
            .bind(pseudonym)
            .execute(&mut *tx)
            .await?
            .rows_affected(),
    )
}
