//! Finding the order an event is about, locked for the transaction.

use sqlx::{PgConnection, Row as _};
use uuid::Uuid;

use crate::domain::{OrderEvent, OrderStatus, find_package};

#[derive(Debug, Clone)]
pub struct StoredOrder {
    pub id: Uuid,
    pub user_id: String,
    pub package_id: String,
    pub status: OrderStatus,
    pub review_reason: Option<String>,
}

/// The order row, locked `for update`. When no row exists and the event's
/// metadata names a user and a known package, the order is created from it
/// (`created_from = 'webhook'`). `None` when the order cannot be found or built.
pub async fn find_or_create_locked(
    tx: &mut PgConnection,
    event: &OrderEvent,
) -> Result<Option<StoredOrder>, sqlx::Error> {
    let package = event.package_id.as_deref().and_then(find_package);
    if let (Some(user_id), Some(package)) = (&event.user_id, package) {
        // Inserting first costs one statement in the common case (the first
        // event of an order) and leaves the new row locked by this transaction.
        let inserted = sqlx::query(
            "insert into payment_orders
                 (id, crossmint_order_id, user_id, package_id, package_snapshot, amount, currency,
                  base_credits, bonus_credits, total_credits, status, status_history, created_from)
             values ($1, $2, $3, $4, $5, $6::numeric, $7, $8, $9, $10, 'pending',
                     jsonb_build_array(jsonb_build_object(
                         'status', 'pending', 'at', now(), 'reason', 'created from webhook metadata')),
                     'webhook')
             on conflict on constraint payment_orders_crossmint_order_id_key do nothing
             returning id",
        )
        .bind(Uuid::now_v7())
        .bind(&event.order_id)
        .bind(user_id)
        .bind(package.id)
        .bind(package.snapshot())
        .bind(package.price.to_string())
        .bind(crate::domain::CURRENCY)
        .bind(package.credits)
        .bind(package.bonus_credits)
        .bind(package.total_credits())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = inserted {
            return Ok(Some(StoredOrder {
                id: row.get(0),
                user_id: user_id.clone(),
                package_id: package.id.to_owned(),
                status: OrderStatus::Pending,
                review_reason: None,
            }));
        }
    }
    let row = sqlx::query(
        "select id, user_id, package_id, status, review_reason
         from payment_orders where crossmint_order_id = $1
         for update",
    )
    .bind(&event.order_id)
    .fetch_optional(&mut *tx)
    .await?;
    row.map(|row| {
        let status: String = row.get(3);
        Ok(StoredOrder {
            id: row.get(0),
            user_id: row.get(1),
            package_id: row.get(2),
            // The check constraint admits only known statuses; anything else
            // is refused rather than guessed, since a guess could grant.
            status: OrderStatus::parse(&status).ok_or_else(|| {
                sqlx::Error::Decode(format!("unknown order status {status:?}").into())
            })?,
            review_reason: row.get(4),
        })
    })
    .transpose()
}
