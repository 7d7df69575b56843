//! Notices to the buyer besides the payment's own grant: credits granted by
//! hand, and credits a refund, a chargeback or a revoke took back. Written
//! in the same transaction as the ledger entry they tell of, one per entry
//! (the id derives from the entry), and sent by the notifier like any
//! other: a mail server that is down never fails the grant or take-back.
//!
//! Email only, to the address the order's own grant mailed (the buyer's,
//! from the payment event) unless the operator gives one; with no address
//! known, nothing is written.

use sqlx::PgConnection;
use uuid::Uuid;

use ledgerhook_domain::GrantFacts;

/// Writes the email notice of ledger entry `ledger_id` about `order_id`;
/// returns the address it will go to, or `None` when none is known.
pub async fn notice(
    tx: &mut PgConnection,
    order_id: Uuid,
    ledger_id: i64,
    facts: &GrantFacts,
    address: Option<&str>,
) -> Result<Option<String>, sqlx::Error> {
    let facts = serde_json::to_value(facts).expect("plain facts serialise");
    sqlx::query_scalar(
        "insert into notifications (id, channel, order_id, recipient, facts)
         select md5('ledger/' || $2::text || '/email')::uuid, 'email', $1, r.recipient, $3
         from (select coalesce($4::text,
                   (select recipient from notifications
                    where order_id = $1 and channel = 'email' and recipient is not null
                    order by created_at limit 1)) as recipient) r
         where r.recipient is not null
         on conflict (id) do nothing
         returning recipient",
    )
    .bind(order_id)
    .bind(ledger_id)
    .bind(facts)
    .bind(address)
    .fetch_optional(&mut *tx)
    .await
}
