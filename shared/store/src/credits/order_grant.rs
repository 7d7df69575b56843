//! The grant an order made, if any: the purchase grant the worker wrote, or
//! a manual grant standing in for it. Revokes take back from it; a manual
//! grant for an order refuses when it exists.

use sqlx::PgConnection;
use uuid::Uuid;

/// An order's grant in the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderGrant {
    pub ledger_id: i64,
    pub credits: i64,
    /// `purchase_grant` or `manual_grant`.
    pub kind: String,
}

/// The first grant of `order_id` (the database allows one of each kind).
pub async fn order_grant(
    tx: &mut PgConnection,
    order_id: Uuid,
) -> Result<Option<OrderGrant>, sqlx::Error> {
    let row: Option<(i64, i64, String)> = sqlx::query_as(
        "select id, credits, kind from credit_ledger
         where order_id = $1 and kind in ('purchase_grant', 'manual_grant')
         order by id limit 1",
    )
    .bind(order_id)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(row.map(|(ledger_id, credits, kind)| OrderGrant {
        ledger_id,
        credits,
        kind,
    }))
}
