//! Erasing a user from orders and their events: the orders re-keyed to the
//! pseudonym, and wherever an event's data names the user (`userId`, as
//! the payment's metadata gave it) the pseudonym instead. Called by
//! `crate::erasure` in its transaction.

use sqlx::PgConnection;
use uuid::Uuid;

/// Work of `user` still under way, which erasing would cut short.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InFlight {
    /// Orders waiting for their payment (`pending`, `paid`).
    pub awaiting_payment: i64,
    /// Orders held for review.
    pub held: i64,
}

impl InFlight {
    pub fn any(&self) -> bool {
        self.awaiting_payment > 0 || self.held > 0
    }
}

/// Locks `user`'s orders (in id order, as batches lock orders) and returns
/// their ids, with what of them is still in flight.
pub async fn lock_orders(
    tx: &mut PgConnection,
    user: &str,
) -> Result<(Vec<Uuid>, InFlight), sqlx::Error> {
    let rows: Vec<(Uuid, String, bool)> = sqlx::query_as(
        "select id, status, review_reason is not null from payment_orders
         where user_id = $1 order by id for update",
    )
    .bind(user)
    .fetch_all(&mut *tx)
    .await?;
    let mut flight = InFlight::default();
    for (_, status, held) in &rows {
        if matches!(status.as_str(), "pending" | "paid") {
            flight.awaiting_payment += 1;
        }
        if *held {
            flight.held += 1;
        }
    }
    Ok((rows.into_iter().map(|(id, _, _)| id).collect(), flight))
}

/// The delivery rows behind `orders`' events, and behind any event whose
/// data names `user` (a payment naming them on someone else's order).
/// Reads every event for the latter: erasure is rare, and an index on
/// event data would cost every batch's insert.
pub async fn delivery_rows(
    tx: &mut PgConnection,
    orders: &[Uuid],
    user: &str,
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "select distinct delivery_id from payment_order_events
         where delivery_id is not null
           and (order_id = any($1) or event_data ->> 'userId' = $2)",
    )
    .bind(orders)
    .bind(user)
    .fetch_all(&mut *tx)
    .await
}

/// Re-keys `orders` to `pseudonym`, and replaces the user's id in the
/// data of their events and of any event naming them. Returns the orders
/// re-keyed.
pub async fn rekey(
    tx: &mut PgConnection,
    orders: &[Uuid],
    user: &str,
    pseudonym: &str,
) -> Result<u64, sqlx::Error> {
    let moved = sqlx::query(
        "update payment_orders set user_id = $2, updated_at = now()
         where id = any($1) and user_id = $3",
    )
    .bind(orders)
    .bind(pseudonym)
    .bind(user)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    // Every JSON string that is exactly the user's id, wherever it sits.
    sqlx::query(
        "update payment_order_events
         set event_data = replace(event_data::text, to_jsonb($2::text)::text,
                                  to_jsonb($3::text)::text)::jsonb
         where (order_id = any($1) or event_data ->> 'userId' = $2)
           and strpos(event_data::text, to_jsonb($2::text)::text) > 0",
    )
    .bind(orders)
    .bind(user)
    .bind(pseudonym)
    .execute(&mut *tx)
    .await?;
    Ok(moved)
}

/// A second pass over a pseudonym's orders (a delivery that arrived after
/// the erasure names the old id in its event data, since its payment's
/// metadata did): any user id in their events' data other than the
/// pseudonym becomes `erased`. The old id is known to no one any more, so
/// "another user than the pseudonym" is all that can be said of it.
pub async fn redact_other_users(
    tx: &mut PgConnection,
    orders: &[Uuid],
    pseudonym: &str,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "update payment_order_events
         set event_data = jsonb_set(event_data, '{userId}', '\"erased\"')
         where order_id = any($1) and event_data ->> 'userId' <> $2",
    )
    .bind(orders)
    .bind(pseudonym)
    .execute(&mut *tx)
    .await?
    .rows_affected())
}
