//! Granting credits by hand (runbook 5.3: a user reports credits missing and
//! the operator has confirmed the payment): a `manual_grant` ledger entry,
//! once per idempotency key, in the caller's transaction.
//!
//! Without an order the credits never expire: they make up for something
//! outside any purchase. With `--order`, the grant stands in for that order's
//! purchase grant, so it honours the order's terms (its credit validity, as
//! a lot) and it marks the order completed: a payment webhook arriving later
//! is then a duplicate, not a second grant. An order that already granted is
//! refused (so is a second manual grant for one order, by the database).

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use ledgerhook_domain::{GrantFacts, NoticeKind, Usdt, find_bought};

use super::book::{self, HandGrant, HandGranted};
use super::order_grant::order_grant;
use crate::ledger::orders;
use crate::notifications::to_buyer;

#[derive(Debug, Clone, Copy)]
pub struct ManualGrant<'a> {
    pub user_id: &'a str,
    pub credits: i64,
    pub reason: &'a str,
    pub idempotency_key: &'a str,
    /// The order (its provider's id) this grant stands in for, if any.
    pub order: Option<&'a str>,
    pub actor: &'a str,
    /// Where to email the buyer about it (with an order only); without it,
    /// the address the order's own grant mailed, if any.
    pub email: Option<&'a str>,
}

/// A manual grant as recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Granted {
    pub ledger_id: i64,
    pub user_id: String,
    pub credits: i64,
    pub order: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub granted_at: DateTime<Utc>,
    /// The balance right after (now, for an earlier grant).
    pub balance_after: i64,
    /// The address the buyer is emailed at about this grant (a grant for an
    /// order whose buyer's address is known), when just made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emailed: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManualGrantOutcome {
    Granted(Granted),
    /// Granted before under this key, with the same user, credits and order:
    /// the first result; nothing changed.
    Replayed(Granted),
    /// The key was used for a different grant; nothing changed.
    KeyReused(Granted),
    /// No order with this Crossmint id.
    NoSuchOrder,
    /// The order belongs to someone else.
    OrderOfAnotherUser {
        owner: String,
    },
    /// The order already granted its credits (by payment or by hand).
    OrderAlreadyGranted {
        ledger_id: i64,
        kind: String,
    },
}

impl ManualGrantOutcome {
    /// A refusal's machine-readable code; none when granted or replayed.
    pub fn refusal_code(&self) -> Option<&'static str> {
        match self {
            Self::Granted(_) | Self::Replayed(_) => None,
            Self::KeyReused(_) => Some("IDEMPOTENCY_KEY_REUSED"),
            Self::NoSuchOrder => Some("ORDER_NOT_FOUND"),
            Self::OrderOfAnotherUser { .. } => Some("ORDER_OF_ANOTHER_USER"),
            Self::OrderAlreadyGranted { .. } => Some("ORDER_ALREADY_GRANTED"),
        }
    }
}

/// Grants in the caller's transaction. Locks the order (if any), then the
/// user's balance row, the lock order of every credit movement.
pub async fn grant_by_hand(
    tx: &mut PgConnection,
    request: ManualGrant<'_>,
) -> Result<ManualGrantOutcome, sqlx::Error> {
    let order = match request.order {
        None => None,
        Some(crossmint_id) => {
            let found: Option<OrderRow> = sqlx::query_as(
                "select id, user_id, status, credits_valid_days, package_id,
                        round(amount, 6)::text, currency
                 from payment_orders where provider_order_id = $1 for update",
            )
            .bind(crossmint_id)
            .fetch_optional(&mut *tx)
            .await?;
            match found {
                None => return Ok(ManualGrantOutcome::NoSuchOrder),
                Some((_, owner, ..)) if owner != request.user_id => {
                    return Ok(ManualGrantOutcome::OrderOfAnotherUser { owner });
                }
                Some(order) => Some(order),
            }
        }
    };
    book::open_account(tx, request.user_id).await?;
    let balance = book::lock_balance(tx, request.user_id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    if let Some(first) = by_key(tx, request.idempotency_key).await? {
        return Ok(replay(first, &request, balance));
    }
    let Some(order) = order else {
        return insert(tx, &request, None).await;
    };
    let order_id = order.0;
    if let Some(granted) = order_grant(tx, order_id).await? {
        return Ok(ManualGrantOutcome::OrderAlreadyGranted {
            ledger_id: granted.ledger_id,
            kind: granted.kind,
        });
    }
    insert(tx, &request, Some(&order)).await
}

/// The order a grant stands in for: id, owner, status, credit validity,
/// package, amount, currency.
type OrderRow = (Uuid, String, String, Option<i32>, String, String, String);

/// Writes the entry, its lot, the balance and (with an order) the order's
/// completion, history and event.
async fn insert(
    tx: &mut PgConnection,
    request: &ManualGrant<'_>,
    order: Option<&OrderRow>,
) -> Result<ManualGrantOutcome, sqlx::Error> {
    let order_id = order.map(|o| o.0);
    let valid_days = order.and_then(|o| o.3);
    let written = book::grant_by_hand(
        tx,
        HandGrant {
            user_id: request.user_id,
            credits: request.credits,
            order_id,
            idempotency_key: request.idempotency_key,
            description: request.reason,
            valid_days,
        },
    )
    .await?;
    let Some(HandGranted {
        ledger_id,
        expires_at,
        granted_at,
        balance_after,
    }) = written
    else {
        // The same key committed by a concurrent run since our look (it
        // locked another user's balance, or none): the database kept one.
        let first = by_key(tx, request.idempotency_key)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        return Ok(replay(first, request, 0));
    };
    let mut emailed = None;
    if let Some((order_id, _, status, _, package_id, amount, currency)) = order {
        let order_id = *order_id;
        let reason = format!(
            "manual grant: {} credits by {}: {}",
            request.credits, request.actor, request.reason
        );
        let event = json!({
            "ledgerId": ledger_id,
            "credits": request.credits,
            "userId": request.user_id,
            "previousStatus": status,
            "actor": request.actor,
            "reason": request.reason,
            "idempotencyKey": request.idempotency_key,
        });
        orders::complete_by_hand(tx, order_id, &reason, &event).await?;
        let facts = GrantFacts {
            kind: NoticeKind::GrantedByHand,
            order_id: request.order.unwrap_or_default().to_owned(),
            user_id: request.user_id.to_owned(),
            package_id: package_id.clone(),
            package_name: find_bought(package_id)
                .map_or_else(|| package_id.clone(), |p| p.name.to_owned()),
            credits: request.credits,
            amount: Usdt::parse(amount).map_or_else(|_| amount.clone(), |a| a.to_string()),
            currency: currency.clone(),
        };
        emailed = to_buyer::notice(tx, order_id, ledger_id, &facts, request.email).await?;
    }
    Ok(ManualGrantOutcome::Granted(Granted {
        ledger_id,
        user_id: request.user_id.to_owned(),
        credits: request.credits,
        order: request.order.map(str::to_owned),
        expires_at,
        granted_at,
        balance_after,
        emailed,
    }))
}

/// The grant already made under `key`, if any.
async fn by_key(tx: &mut PgConnection, key: &str) -> Result<Option<Granted>, sqlx::Error> {
    type Row = (
        i64,
        String,
        i64,
        Option<String>,
        Option<DateTime<Utc>>,
        DateTime<Utc>,
    );
    let row: Option<Row> = sqlx::query_as(
        "select l.id, l.user_id, l.credits, o.provider_order_id, l.expires_at, l.created_at
         from credit_ledger l left join payment_orders o on o.id = l.order_id
         where l.kind = 'manual_grant' and l.idempotency_key = $1",
    )
    .bind(key)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(row.map(
        |(ledger_id, user_id, credits, order, expires_at, granted_at)| Granted {
            ledger_id,
            user_id,
            credits,
            order,
            expires_at,
            granted_at,
            balance_after: 0,
            emailed: None,
        },
    ))
}

/// The answer to a key used before: the first grant if it was the same one.
fn replay(first: Granted, request: &ManualGrant<'_>, balance: i64) -> ManualGrantOutcome {
    let same = first.user_id == request.user_id
        && first.credits == request.credits
        && first.order.as_deref() == request.order;
    let first = Granted {
        balance_after: if first.user_id == request.user_id {
            balance
        } else {
            0
        },
        ..first
    };
    if same {
        ManualGrantOutcome::Replayed(first)
    } else {
        ManualGrantOutcome::KeyReused(first)
    }
}
