//! Commands on credits: finding duplicates (runbook 5.2 step 2), revoking
//! a grant (5.2 step 3), granting by hand (5.3) and a user's audit (5.3
//! steps 1 and 2). The ledger work is `ledgerhook_store::credits`; here is
//! the audit row in the same transaction, and the printout.

use crate::terminal::Shown;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use ledgerhook_store::credits::{
    self, ManualGrant, ManualGrantOutcome, OrderRef, Share, TakeBack, TakeBackCause,
    TakeBackOutcome,
};
use ledgerhook_store::deliveries::operator;
use serde_json::json;
use sqlx::PgPool;

use super::Printout;
use ledgerhook_store::audit::{self as audit_log, Entry};

pub async fn duplicates(
    pool: &PgPool,
    who: Option<&str>,
    since: DateTime<Utc>,
) -> anyhow::Result<Printout> {
    let orders = operator::duplicated_orders(pool, since).await?;
    audit_log::record(
        pool,
        Entry {
            operator: who,
            reason: None,
            command: "duplicates",
            arguments: json!({"since": since}),
            result: json!({"orders": orders.len()}),
        },
    )
    .await?;
    let mut text = format!(
        "{} orders hit by duplicate deliveries since {since}\n",
        orders.len()
    );
    if !orders.is_empty() {
        writeln!(
            text,
            "{:<28} {:<24} {:>10} {:>7} {:>6} {:<10} last hit / deliveries",
            "order", "user", "status", "credits", "dups", "grants"
        )?;
    }
    for o in &orders {
        let grants = match (o.grants, o.revoked_at) {
            (_, Some(_)) => format!("{} rvkd", o.grants),
            (1, None) => "1".to_owned(),
            (n, None) => format!("{n} (!)"),
        };
        writeln!(
            text,
            "{:<28} {:<24} {:>10} {:>7} {:>6} {:<10} {} {}",
            Shown(&o.order),
            Shown(&o.user_id),
            o.status,
            o.total_credits,
            o.duplicates,
            grants,
            o.last_at,
            Shown(o.deliveries.join(","))
        )?;
    }
    Ok(Printout::done(
        json!({"since": since, "orders": orders}),
        text,
    ))
}

pub async fn revoke(
    pool: &PgPool,
    who: Option<&str>,
    order: &str,
    reason: &str,
) -> anyhow::Result<Printout> {
    let mut tx = pool.begin().await?;
    let outcome = credits::take_back(
        &mut tx,
        TakeBack {
            order: OrderRef::ProviderOrderId(order),
            share: Share::All,
            cause: TakeBackCause::Revoke,
            reason,
            actor: who.unwrap_or("unknown"),
        },
    )
    .await?;
    let (printout, result) = match &outcome {
        TakeBackOutcome::Taken(taken) => (
            Printout::done(
                json!({"revoked": true, "changed": true, "revoke": taken}),
                format!(
                    "revoked order {order} (grant #{}, {} credits) for user {}: took back {}, {} short{}; balance now {}; ledger entry #{}\n",
                    taken.grant_id,
                    taken.granted,
                    taken.user_id,
                    taken.taken,
                    taken.shortfall,
                    if taken.shortfall > 0 {
                        " (already spent: recorded on the order, not taken below zero)"
                    } else {
                        ""
                    },
                    taken.balance_after,
                    taken.ledger_id
                ),
            ),
            json!({"changed": true, "revoke": taken}),
        ),
        TakeBackOutcome::AlreadyTaken(earlier) => (
            Printout::done(
                json!({"revoked": true, "changed": false, "revoke": earlier}),
                format!(
                    "order {order} was already revoked (ledger entry #{}: took back {}, {} short); nothing changed\n",
                    earlier.ledger_id, earlier.taken, earlier.shortfall
                ),
            ),
            json!({"changed": false, "revoke": earlier}),
        ),
        TakeBackOutcome::NoSuchOrder => (
            Printout::refused(
                "ORDER_NOT_FOUND",
                format!("no order {order} is recorded"),
                json!({"order": order}),
            ),
            json!({"changed": false, "refused": "ORDER_NOT_FOUND"}),
        ),
        TakeBackOutcome::NotGranted => (
            Printout::refused(
                "ORDER_NOT_GRANTED",
                format!("order {order} never granted credits; nothing to revoke"),
                json!({"order": order}),
            ),
            json!({"changed": false, "refused": "ORDER_NOT_GRANTED"}),
        ),
        TakeBackOutcome::NothingAsked => {
            unreachable!("a revoke always writes its entry, even of zero credits")
        }
    };
    audit_log::record(
        &mut *tx,
        Entry {
            operator: who,
            reason: Some(reason),
            command: "revoke",
            arguments: json!({"order": order}),
            result,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(printout)
}

pub async fn grant(pool: &PgPool, request: ManualGrant<'_>) -> anyhow::Result<Printout> {
    let mut tx = pool.begin().await?;
    let outcome = credits::grant_by_hand(&mut tx, request).await?;
    let arguments = json!({
        "user": request.user_id,
        "credits": request.credits,
        "idempotencyKey": request.idempotency_key,
        "order": request.order,
    });
    let (printout, result) = match &outcome {
        ManualGrantOutcome::Granted(granted) => (
            Printout::done(
                json!({"granted": granted, "changed": true}),
                format!(
                    "granted {} credits to {}{} (ledger entry #{}, {}); balance now {}; {}\n",
                    granted.credits,
                    granted.user_id,
                    granted
                        .order
                        .as_deref()
                        .map(|o| format!(" for order {o}"))
                        .unwrap_or_default(),
                    granted.ledger_id,
                    granted
                        .expires_at
                        .map_or_else(|| "never expires".to_owned(), |at| format!("expires {at}")),
                    granted.balance_after,
                    granted.emailed.as_deref().map_or_else(
                        || "no email (no address known for the buyer)".to_owned(),
                        |to| format!("the buyer is emailed at {to}")
                    )
                ),
            ),
            json!({"changed": true, "granted": granted}),
        ),
        ManualGrantOutcome::Replayed(first) => (
            Printout::done(
                json!({"granted": first, "changed": false}),
                format!(
                    "already granted under key {} at {} (ledger entry #{}: {} credits to {}); nothing changed\n",
                    request.idempotency_key,
                    first.granted_at,
                    first.ledger_id,
                    first.credits,
                    first.user_id
                ),
            ),
            json!({"changed": false, "replayed": first}),
        ),
        refused => {
            let code = refused.refusal_code().unwrap_or("REFUSED");
            let message = match refused {
                ManualGrantOutcome::KeyReused(first) => format!(
                    "key {} was used for another grant (ledger entry #{}: {} credits to {})",
                    request.idempotency_key, first.ledger_id, first.credits, first.user_id
                ),
                ManualGrantOutcome::NoSuchOrder => {
                    format!("no order {} is recorded", request.order.unwrap_or("-"))
                }
                ManualGrantOutcome::OrderOfAnotherUser { owner } => format!(
                    "order {} belongs to {owner}, not {}",
                    request.order.unwrap_or("-"),
                    request.user_id
                ),
                ManualGrantOutcome::OrderAlreadyGranted { ledger_id, kind } => format!(
                    "order {} already granted its credits ({kind}, ledger entry #{ledger_id})",
                    request.order.unwrap_or("-")
                ),
                ManualGrantOutcome::Granted(_) | ManualGrantOutcome::Replayed(_) => String::new(),
            };
            (
                Printout::refused(code, message, json!({})),
                json!({"changed": false, "refused": code}),
            )
        }
    };
    audit_log::record(
        &mut *tx,
        Entry {
            operator: Some(request.actor),
            reason: Some(request.reason),
            command: "grant",
            arguments,
            result,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(printout)
}

pub async fn audit(pool: &PgPool, who: Option<&str>, user: &str) -> anyhow::Result<Printout> {
    let history = credits::user_history(pool, user).await?;
    audit_log::record(
        pool,
        Entry {
            operator: who,
            reason: None,
            command: "audit",
            arguments: json!({"user": user}),
            result: json!({"movements": history.movements.len(), "balance": history.balance}),
        },
    )
    .await?;
    let mut text = format!(
        "user {user}: balance {} (spendable now {}); the ledger sums to {}{}\n",
        history.balance,
        history.spendable,
        history.ledger_sum,
        if history.ledger_sum == history.balance {
            ""
        } else {
            " (MISMATCH)"
        }
    );
    writeln!(text, "\nmovements ({}):", history.movements.len())?;
    writeln!(
        text,
        "{:>6}  {:<32} {:<14} {:>8} {:>8}  cause",
        "entry", "at", "kind", "credits", "balance"
    )?;
    let mut json_movements = Vec::new();
    for m in &history.movements {
        let cause = m.cause();
        writeln!(
            text,
            "{:>6}  {:<32} {:<14} {:>+8} {:>8}  {cause}",
            m.ledger_id,
            m.at.to_rfc3339(),
            m.kind,
            m.credits,
            m.balance_after,
            cause = Shown(&cause),
        )?;
        let mut movement = serde_json::to_value(m)?;
        movement["cause"] = json!(cause);
        json_movements.push(movement);
    }
    writeln!(text, "\norders ({}):", history.orders.len())?;
    for o in &history.orders {
        writeln!(
            text,
            "  {} {} {} {} credits, {}{}{}",
            Shown(&o.order),
            Shown(&o.package_id),
            o.status,
            o.total_credits,
            if o.granted { "granted" } else { "NOT granted" },
            o.review_reason
                .as_deref()
                .map(|r| format!(", held for review: {}", Shown(r)))
                .unwrap_or_default(),
            o.revoked_credits
                .map(|c| format!(", revoked {c} ({} short)", o.revoke_shortfall.unwrap_or(0)))
                .unwrap_or_default(),
        )?;
    }
    let mut json = serde_json::to_value(&history)?;
    json["movements"] = json!(json_movements);
    Ok(Printout::done(json, text))
}
