//! Finding the orders a batch is about, locked for the transaction.

use std::collections::HashMap;

use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{CURRENCY, CreditTerms, OrderEvent, OrderStatus, find_package};

#[derive(Debug, Clone)]
pub struct StoredOrder {
    pub id: Uuid,
    pub user_id: String,
    pub package_id: String,
    pub status: OrderStatus,
    pub review_reason: Option<String>,
    /// Days the credits of this order stay valid after the grant (none: forever).
    pub credits_valid_days: Option<i32>,
}

/// Creates the orders that do not exist yet but whose events name a user and
/// a known package in their metadata (`created_from = 'webhook'`), then locks
/// every order the events refer to, in order-id order so that concurrent
/// batches take locks in the same order. Returns them by Crossmint order id;
/// an id missing from the map is an order we cannot know. An order created
/// here takes its credit validity from `terms`, as the API's would.
pub async fn find_or_create_locked(
    tx: &mut PgConnection,
    events: &[&OrderEvent],
    terms: &CreditTerms,
) -> Result<HashMap<String, StoredOrder>, sqlx::Error> {
    let mut creatable: Vec<&OrderEvent> = events
        .iter()
        .copied()
        .filter(|e| e.user_id.is_some() && e.package_id.as_deref().and_then(find_package).is_some())
        .collect();
    creatable.sort_by(|a, b| a.order_id.cmp(&b.order_id));
    creatable.dedup_by(|a, b| a.order_id == b.order_id);
    if !creatable.is_empty() {
        let mut ids = Vec::new();
        let mut order_ids = Vec::new();
        let mut users = Vec::new();
        let mut packages = Vec::new();
        let mut snapshots = Vec::new();
        let mut prices = Vec::new();
        let mut base = Vec::new();
        let mut bonus = Vec::new();
        let mut valid_days = Vec::new();
        for event in creatable {
            let package = event
                .package_id
                .as_deref()
                .and_then(find_package)
                .expect("filtered above");
            ids.push(Uuid::now_v7());
            order_ids.push(event.order_id.as_str());
            users.push(event.user_id.as_deref().expect("filtered above"));
            packages.push(package.id);
            snapshots.push(package.snapshot());
            prices.push(package.price.to_string());
            base.push(package.credits);
            bonus.push(package.bonus_credits);
            valid_days.push(terms.valid_days(package.id));
        }
        sqlx::query(
            "insert into payment_orders
                 (id, crossmint_order_id, user_id, package_id, package_snapshot, amount, currency,
                  base_credits, bonus_credits, total_credits, status, status_history, created_from,
                  credits_valid_days)
             select id, order_id, user_id, package_id, snapshot, price::numeric, $9, base, bonus,
                    base + bonus, 'pending',
                    jsonb_build_array(jsonb_build_object(
                        'status', 'pending', 'at', now(), 'reason', 'created from webhook metadata')),
                    'webhook', valid_days
             from unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::text[],
                         $7::int8[], $8::int8[], $10::int4[])
                  as n(id, order_id, user_id, package_id, snapshot, price, base, bonus, valid_days)
             on conflict on constraint payment_orders_crossmint_order_id_key do nothing",
        )
        .bind(&ids)
        .bind(&order_ids)
        .bind(&users)
        .bind(&packages)
        .bind(&snapshots)
        .bind(&prices)
        .bind(&base)
        .bind(&bonus)
        .bind(CURRENCY)
        .bind(&valid_days)
        .execute(&mut *tx)
        .await?;
    }

    let mut wanted: Vec<&str> = events.iter().map(|e| e.order_id.as_str()).collect();
    wanted.sort_unstable();
    wanted.dedup();
    type Row = (
        Uuid,
        String,
        String,
        String,
        String,
        Option<String>,
        Option<i32>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "select id, crossmint_order_id, user_id, package_id, status, review_reason,
                credits_valid_days
         from payment_orders where crossmint_order_id = any($1)
         order by crossmint_order_id
         for update",
    )
    .bind(&wanted)
    .fetch_all(&mut *tx)
    .await?;
    rows.into_iter()
        .map(
            |(id, order_id, user_id, package_id, status, review_reason, credits_valid_days)| {
                // The check constraint admits only known statuses; anything else
                // is refused rather than guessed, since a guess could grant.
                let status = OrderStatus::parse(&status).ok_or_else(|| {
                    sqlx::Error::Decode(format!("unknown order status {status:?}").into())
                })?;
                Ok((
                    order_id,
                    StoredOrder {
                        id,
                        user_id,
                        package_id,
                        status,
                        review_reason,
                        credits_valid_days,
                    },
                ))
            },
        )
        .collect()
}
