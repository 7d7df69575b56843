//! Orders held for review: `held` lists them, `release` grants the order's
//! credits once and clears the hold, `reject` grants nothing and closes the
//! order. Each is one transaction with its audit row
//! (`ledgerhook_store::ledger::review` does the work; the console calls the
//! same functions).

use std::fmt::Write as _;

use ledgerhook_store::audit::{self as audit_log, Entry};
use ledgerhook_store::ledger::review::{self, Resolution};
use serde_json::json;
use sqlx::PgPool;

use crate::Printout;
use crate::terminal::Shown;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Release,
    Reject,
}

pub async fn held(pool: &PgPool, who: Option<&str>, limit: i64) -> anyhow::Result<Printout> {
    let orders = review::held(pool, limit).await?;
    audit_log::record(
        pool,
        Entry {
            operator: who,
            reason: None,
            command: "held",
            arguments: json!({"limit": limit}),
            result: json!({"listed": orders.len()}),
        },
    )
    .await?;
    let mut text = format!("{} orders held for review\n", orders.len());
    for o in &orders {
        writeln!(
            text,
            "{}\t{}\t{}\t{}\t{} credits\t{}\theld {}: {}",
            o.provider,
            Shown(&o.provider_order_id),
            Shown(&o.user_id),
            Shown(&o.package_id),
            o.total_credits,
            o.status,
            o.held_at
                .map_or_else(|| "(time unknown)".to_owned(), |at| at.to_rfc3339()),
            Shown(&o.review_reason),
        )?;
    }
    Ok(Printout::done(json!({"held": orders}), text))
}

pub async fn resolve(
    pool: &PgPool,
    verdict: Verdict,
    who: Option<&str>,
    order: &str,
    reason: &str,
) -> anyhow::Result<Printout> {
    let actor = who.unwrap_or("unknown");
    let mut tx = pool.begin().await?;
    let resolution = match verdict {
        Verdict::Release => review::release(&mut tx, order, actor, reason).await?,
        Verdict::Reject => review::reject(&mut tx, order, actor, reason).await?,
    };
    let command = match verdict {
        Verdict::Release => "release",
        Verdict::Reject => "reject",
    };
    let order_shown = Shown(order);
    let printout = match &resolution {
        Resolution::Granted {
            user_id,
            credits,
            ledger_id,
            balance_after,
        } => Printout::done(
            json!({"changed": true, "resolution": resolution}),
            format!(
                "released order {order_shown}: granted {credits} credits to {} (ledger entry #{ledger_id}); balance now {balance_after}\n",
                Shown(user_id)
            ),
        ),
        Resolution::AlreadyGranted { ledger_id } => Printout::done(
            json!({"changed": true, "resolution": resolution}),
            format!(
                "released order {order_shown}: it had granted already (ledger entry #{ledger_id}); hold cleared, nothing granted again\n"
            ),
        ),
        Resolution::Rejected { status } => Printout::done(
            json!({"changed": true, "resolution": resolution}),
            format!(
                "rejected the held payment of order {order_shown}: nothing granted, order {status}; refund the buyer at the provider\n"
            ),
        ),
        Resolution::NotFound => Printout::refused(
            "ORDER_NOT_FOUND",
            format!("no order {order_shown} is recorded"),
            json!({"order": order}),
        ),
        Resolution::NotHeld => Printout::refused(
            "ORDER_NOT_HELD",
            format!("order {order_shown} is not held for review; nothing changed"),
            json!({"order": order}),
        ),
    };
    audit_log::record(
        &mut *tx,
        Entry {
            operator: Some(actor),
            reason: Some(reason),
            command,
            arguments: json!({"order": order}),
            result: json!({"changed": resolution.refusal_code().is_none(), "resolution": resolution}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(printout)
}
