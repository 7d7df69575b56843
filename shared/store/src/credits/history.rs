//! "Where are my credits": a user's balance, every ledger movement with its
//! cause, and their orders, for support (`ledgerhook-admin audit`).
//!
//! Read-only. It joins the deliveries and orders only to name a movement's
//! cause (the sender's delivery id, the provider's order id).

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// One ledger entry and what caused it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Movement {
    pub ledger_id: i64,
    pub at: DateTime<Utc>,
    /// purchase_grant, spend, expiry, revoke, manual_grant, refund, chargeback
    pub kind: String,
    /// Signed: grants positive, the rest negative.
    pub credits: i64,
    /// The provider's order id (grants, take-backs, manual grants for an order).
    pub order: Option<String>,
    /// The sender's delivery id whose event granted (purchase grants).
    pub delivery: Option<String>,
    /// The grant this entry expires or revokes.
    pub grant_id: Option<i64>,
    /// A take-back's credits that could not be taken back (already spent).
    pub shortfall: Option<i64>,
    /// A refund's or chargeback's provider fact (the charge with its
    /// refunded total, the dispute).
    pub provider_reference: Option<String>,
    /// Grants: when what is left of them expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// A spend's description; a revoke's or manual grant's reason.
    pub description: Option<String>,
    /// A manual grant's idempotency key.
    pub idempotency_key: Option<String>,
    /// The running balance after this entry.
    pub balance_after: i64,
}

impl Movement {
    /// The cause in words.
    pub fn cause(&self) -> String {
        let order = self.order.as_deref().unwrap_or("-");
        let said = |text: &Option<String>| text.as_deref().unwrap_or("").to_owned();
        match self.kind.as_str() {
            "purchase_grant" => format!(
                "payment of order {order} (delivery {})",
                self.delivery.as_deref().unwrap_or("-")
            ),
            "spend" => format!("spent: {}", said(&self.description)),
            "expiry" => format!("expired unspent, grant #{}", self.grant_id.unwrap_or(0)),
            "revoke" => format!(
                "revoked grant #{} of order {order} ({} short): {}",
                self.grant_id.unwrap_or(0),
                self.shortfall.unwrap_or(0),
                said(&self.description)
            ),
            "refund" | "chargeback" => format!(
                "{} {} of order {order}, grant #{} ({} short): {}",
                self.kind,
                said(&self.provider_reference),
                self.grant_id.unwrap_or(0),
                self.shortfall.unwrap_or(0),
                said(&self.description)
            ),
            "manual_grant" => format!(
                "granted by hand{}: {} (key {})",
                self.order
                    .as_deref()
                    .map(|o| format!(" for order {o}"))
                    .unwrap_or_default(),
                said(&self.description),
                said(&self.idempotency_key)
            ),
            other => other.to_owned(),
        }
    }
}

/// One of the user's orders, granted or not.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct UserOrder {
    pub order: String,
    pub package_id: String,
    pub status: String,
    pub total_credits: i64,
    pub created_at: DateTime<Utc>,
    /// Whether a purchase or manual grant exists for it.
    pub granted: bool,
    pub review_reason: Option<String>,
    pub revoked_credits: Option<i64>,
    pub revoke_shortfall: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserHistory {
    pub user_id: String,
    /// The stored balance.
    pub balance: i64,
    /// Spendable now (the balance less credits past their expiry that the
    /// job has not removed yet).
    pub spendable: i64,
    /// The sum of the ledger; equal to `balance` unless something is wrong.
    pub ledger_sum: i64,
    pub movements: Vec<Movement>,
    pub orders: Vec<UserOrder>,
}

pub async fn user_history(pool: &PgPool, user_id: &str) -> Result<UserHistory, sqlx::Error> {
    let view = super::credits_view(pool, user_id, 0).await?;
    let balance: i64 = sqlx::query_scalar(
        "select coalesce((select balance from user_credits where user_id = $1), 0)",
    )
    .bind(user_id)
    .fetch_one(pool)
    .await?;
    let movements: Vec<Movement> = sqlx::query_as(
        "select l.id as ledger_id, l.created_at as at, l.kind, l.credits,
                o.provider_order_id as order, d.delivery_id as delivery,
                coalesce(l.expired_grant_id, l.reverses_grant_id) as grant_id,
                l.shortfall, l.provider_reference, l.expires_at, l.description,
                l.idempotency_key,
                (sum(l.credits) over (order by l.id))::int8 as balance_after
         from credit_ledger l
         left join payment_orders o on o.id = l.order_id
         left join webhook_deliveries d on d.id = l.delivery_id
         where l.user_id = $1
         order by l.id",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    let orders: Vec<UserOrder> = sqlx::query_as(
        "select o.provider_order_id as order, o.package_id, o.status, o.total_credits,
                o.created_at,
                exists (select 1 from credit_ledger l where l.order_id = o.id
                        and l.kind in ('purchase_grant', 'manual_grant')) as granted,
                o.review_reason, o.revoked_credits, o.revoke_shortfall
         from payment_orders o where o.user_id = $1
         order by o.created_at",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    Ok(UserHistory {
        user_id: user_id.to_owned(),
        balance,
        spendable: view.balance,
        ledger_sum: movements.last().map_or(0, |m| m.balance_after),
        movements,
        orders,
    })
}

/// One entry of a user's own ledger, as the user may see it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LedgerEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// purchase_grant, spend, expiry, revoke, manual_grant, refund, chargeback
    pub kind: String,
    /// Signed: grants positive, the rest negative.
    pub credits: i64,
    pub balance_after: i64,
    /// The provider's order id, for entries about an order.
    pub order: Option<String>,
    /// The entry this one expires or takes back from.
    pub grant_id: Option<i64>,
    /// Grants: when what is left of them expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// A spend's own description (the user wrote it); never an operator's
    /// reason.
    pub spend_description: Option<String>,
}

/// The user's ledger entries older than `before` (all when `None`), newest
/// first, at most `limit`, each with the balance right after it. The
/// running balance sums every older entry, so a page costs a scan of the
/// user's entries up to the cursor (index `credit_ledger_user_entry_idx`).
pub async fn ledger_page(
    pool: &PgPool,
    user_id: &str,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<LedgerEntry>, sqlx::Error> {
    sqlx::query_as(
        "select * from (
             select l.id, l.created_at as at, l.kind, l.credits,
                    (sum(l.credits) over (order by l.id))::int8 as balance_after,
                    o.provider_order_id as order,
                    coalesce(l.expired_grant_id, l.reverses_grant_id) as grant_id,
                    l.expires_at,
                    case when l.kind = 'spend' then l.description end as spend_description
             from credit_ledger l
             left join payment_orders o on o.id = l.order_id
             where l.user_id = $1 and l.id < coalesce($2, 9223372036854775807)
         ) entries
         order by id desc
         limit $3",
    )
    .bind(user_id)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await
}
