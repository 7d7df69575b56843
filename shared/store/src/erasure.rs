//! Erasing a buyer (`ledgerhook-admin erase-user`): their personal data
//! removed, the ledger kept balanced under a pseudonymous id.
//!
//! In one transaction, the caller's (which writes the audit row in it):
//! every row keyed by the user's id moves to `erased-<random uuid>`
//! (orders, ledger, lots, balance, spends, usage, subscriptions, and the
//! id wherever event data or the audit trail names it), amounts untouched,
//! so every sum is what it was; the bodies and headers of the deliveries
//! behind their orders and entries are scrubbed (their hashes kept), and
//! their notifications lose their addresses. Ephemeral state (rate limits,
//! idempotency keys) is deleted. Nothing maps the pseudonym back to the id:
//! that map would itself be the personal data.
//!
//! Each table's statement is its owner's (`credits::erasure`,
//! `ledger::erasure`, `subscriptions`, `usage`, `rate_limits`, `order_keys`,
//! `audit`, `deliveries::scrub`, `notifications::scrub`); this module only
//! orders them. Lock order as the payment path's: orders, then the balance.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::ledger::erasure::InFlight;
use crate::{audit, credits, deliveries, ledger, notifications, order_keys, rate_limits};
use crate::{subscriptions, usage};

/// The prefix of every pseudonym.
pub const PSEUDONYM_PREFIX: &str = "erased-";

/// What an erasure did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Erased {
    pub pseudonym: String,
    pub orders: u64,
    pub ledger_entries: u64,
    /// The balance kept under the pseudonym.
    pub balance: i64,
    pub subscriptions: u64,
    pub deliveries_scrubbed: u64,
    pub notifications_scrubbed: u64,
    pub audit_rows: u64,
}

/// Why nothing was erased, or what was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Erased(Erased),
    /// No row names this id: never a user, or erased before.
    Unknown,
    /// Orders awaiting payment or held for review, or a live subscription:
    /// a payment arriving after the erasure would belong to no one.
    InFlight {
        orders: InFlight,
        live_subscriptions: i64,
    },
}

/// Erases `user` in `tx` (see the module doc). Changes nothing unless it
/// returns [`Outcome::Erased`].
pub async fn erase_user(tx: &mut PgConnection, user: &str) -> Result<Outcome, sqlx::Error> {
    let (orders, in_flight) = ledger::erasure::lock_orders(tx, user).await?;
    let (any_subscriptions, live_subscriptions) = subscriptions::count_of(tx, user).await?;
    if in_flight.any() || live_subscriptions > 0 {
        return Ok(Outcome::InFlight {
            orders: in_flight,
            live_subscriptions,
        });
    }
    if orders.is_empty()
        && !credits::erasure::knows(tx, user).await?
        && !usage::knows(tx, user).await?
        && any_subscriptions == 0
    {
        return Ok(Outcome::Unknown);
    }
    // Erasing a pseudonym again scrubs what arrived since the first
    // erasure (a late payment's body names the old id) under the same
    // pseudonym: the re-keying is then a no-op.
    let again = user.starts_with(PSEUDONYM_PREFIX);
    let pseudonym = if again {
        user.to_owned()
    } else {
        format!("{PSEUDONYM_PREFIX}{}", Uuid::new_v4())
    };
    if again {
        ledger::erasure::redact_other_users(tx, &orders, &pseudonym).await?;
    }

    let mut rows = ledger::erasure::delivery_rows(tx, &orders, user).await?;
    rows.extend(credits::erasure::delivery_rows(tx, user).await?);
    rows.sort_unstable();
    rows.dedup();
    let deliveries_scrubbed = deliveries::scrub::rows(tx, &rows).await?;
    let notifications_scrubbed = notifications::scrub::of_orders(tx, &orders, &pseudonym).await?;

    let moved = ledger::erasure::rekey(tx, &orders, user, &pseudonym).await?;
    let credits = credits::erasure::rekey(tx, user, &pseudonym).await?;
    let subscriptions = subscriptions::rekey_user(tx, user, &pseudonym).await?;
    usage::rekey_user(tx, user, &pseudonym).await?;
    rate_limits::forget_user(tx, user).await?;
    order_keys::forget_user(tx, user).await?;
    let audit_rows = audit::rekey_user(tx, user, &pseudonym).await?;
    Ok(Outcome::Erased(Erased {
        pseudonym,
        orders: moved,
        ledger_entries: credits.ledger_entries,
        balance: credits.balance,
        subscriptions,
        deliveries_scrubbed,
        notifications_scrubbed,
        audit_rows,
    }))
}
