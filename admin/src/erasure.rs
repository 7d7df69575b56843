//! `ledgerhook-admin erase-user USER --reason ...`: a buyer's personal data
//! removed, their ledger kept balanced under a pseudonym
//! (`ledgerhook_store::erasure`), with the audit row in the same
//! transaction. The audit row names the pseudonym, never the erased id
//! (the reason too has the id replaced by it): otherwise the trail itself
//! would map one to the other. A refusal is audited too; an unknown id is
//! not recorded (it may be an erased person's old one).

use ledgerhook_store::audit::{self as audit_log, Entry};
use ledgerhook_store::erasure::{self, Outcome};
use serde_json::json;
use sqlx::PgPool;

use super::Printout;

pub async fn erase_user(
    pool: &PgPool,
    operator: Option<&str>,
    user: &str,
    reason: &str,
) -> anyhow::Result<Printout> {
    let mut tx = pool.begin().await?;
    let outcome = erasure::erase_user(&mut tx, user).await?;
    let (printout, result, kept_reason) = match &outcome {
        Outcome::Erased(erased) => (
            Printout::done(
                json!({"erased": true, "result": erased}),
                format!(
                    "erased: the user's data is now under {}\n\
                     {} orders and {} ledger entries re-keyed (balance {} kept), {} subscriptions, \
                     {} deliveries' bodies and {} notifications scrubbed, {} audit rows re-keyed\n",
                    erased.pseudonym,
                    erased.orders,
                    erased.ledger_entries,
                    erased.balance,
                    erased.subscriptions,
                    erased.deliveries_scrubbed,
                    erased.notifications_scrubbed,
                    erased.audit_rows
                ),
            ),
            serde_json::to_value(erased)?,
            reason.replace(user, &erased.pseudonym),
        ),
        Outcome::Unknown => (
            Printout::refused(
                "USER_NOT_FOUND",
                "no data is kept under this user id (never a user, or erased before)".into(),
                json!({}),
            ),
            json!({"refused": "USER_NOT_FOUND"}),
            reason.replace(user, "[the id asked about]"),
        ),
        Outcome::InFlight {
            orders,
            live_subscriptions,
        } => (
            Printout::refused(
                "USER_HAS_IN_FLIGHT_WORK",
                format!(
                    "the user has {} orders awaiting payment, {} held for review and {} live subscriptions: \
                     a payment arriving after the erasure would belong to no one. Wait for the orders to \
                     expire (PAYMENT_TIMEOUT_MINUTES), release or reject the held ones, cancel the \
                     subscriptions, then erase",
                    orders.awaiting_payment, orders.held, live_subscriptions
                ),
                json!({"inFlight": orders, "liveSubscriptions": live_subscriptions}),
            ),
            json!({"refused": "USER_HAS_IN_FLIGHT_WORK"}),
            reason.to_owned(),
        ),
    };
    // A user still here may be named (a later erasure re-keys this row
    // too); an unknown id may be an erased person's old one, and is not.
    let arguments = match &outcome {
        Outcome::InFlight { .. } => json!({"user": user}),
        _ => json!({}),
    };
    if !matches!(outcome, Outcome::Erased(_)) {
        // Nothing changed: let go of the locks before the audit row.
        tx.rollback().await?;
        tx = pool.begin().await?;
    }
    audit_log::record(
        &mut *tx,
        Entry {
            operator,
            reason: Some(&kept_reason),
            command: "erase-user",
            arguments,
            result,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(printout)
}
