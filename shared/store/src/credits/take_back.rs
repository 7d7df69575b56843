//! Taking back an order's credits with a compensating ledger entry (never a
//! deletion): the operator's revoke, and a provider's refund or dispute
//! (Stripe), each for a share of the order's credits.
//!
//! Credits the user already spent cannot be taken back: the take stops at
//! what the balance holds (it never goes negative) and the rest is recorded
//! as the shortfall, on the ledger entry and on the order.
//!
//! Lock order, as everywhere credits move: the order row (as the worker
//! does before balances), the user's balance row, then their lots. Credits
//! whose time has come are expired first, and what expired of this grant is
//! not asked for: it is gone, neither spent nor there to take. Nor is what
//! an earlier take-back of the grant already asked for: a refund and then a
//! dispute of the rest never take the same credits twice.
//!
//! The credits move through [`super::book`] ([`Draw::OwnGrantFirst`]),
//! which keeps the lots invariant; the order's revoke columns, history and
//! event through [`crate::ledger::orders::record_take_back`].

use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use ledgerhook_domain::{GrantFacts, NoticeKind, Usdt, find_bought};

use super::book::{self, Debit, Draw};
use super::order_grant::order_grant;
use crate::ledger::orders;
use crate::notifications::to_buyer;

/// The ledger kinds that take back a grant (`reverses_grant_id` set).
const TAKE_BACK_KINDS: [&str; 3] = ["revoke", "refund", "chargeback"];

/// Why credits are taken back; each cause is a ledger kind with its own
/// uniqueness rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakeBackCause<'a> {
    /// An operator's revoke (`ledgerhook-admin revoke`): at most one per
    /// grant (`credit_ledger_one_revoke_per_grant`).
    Revoke,
    /// A provider's refund; `reference` names the refund state it answers
    /// (one entry per reference: `credit_ledger_one_entry_per_provider_reference`).
    Refund { reference: &'a str },
    /// A dispute opened by the buyer's bank, one entry per dispute.
    Chargeback { reference: &'a str },
}

impl<'a> TakeBackCause<'a> {
    /// The ledger kind written.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Revoke => "revoke",
            Self::Refund { .. } => "refund",
            Self::Chargeback { .. } => "chargeback",
        }
    }

    /// What the buyer's email says happened.
    fn notice_kind(self) -> NoticeKind {
        match self {
            Self::Revoke => NoticeKind::Revoke,
            Self::Refund { .. } => NoticeKind::Refund,
            Self::Chargeback { .. } => NoticeKind::Chargeback,
        }
    }

    /// The event recorded on the order.
    fn event_type(self) -> &'static str {
        match self {
            Self::Revoke => "credits.revoked",
            Self::Refund { .. } => "credits.refunded",
            Self::Chargeback { .. } => "credits.charged_back",
        }
    }

    /// The provider's reference (refunds and chargebacks).
    fn reference(self) -> Option<&'a str> {
        match self {
            Self::Revoke => None,
            Self::Refund { reference } | Self::Chargeback { reference } => Some(reference),
        }
    }
}

/// How much of the order's grant to take back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Share {
    /// Everything the order granted.
    All,
    /// At most this many credits (never more than the grant).
    Credits(i64),
    /// Whatever brings this cause's take-backs of the grant up to this many
    /// credits in all (a refund reports the refunded total so far, so a
    /// second partial refund asks only for the difference, and a late event
    /// with a smaller total asks for nothing).
    UpTo(i64),
}

/// Which order: by its provider's id, or by the payment that paid it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderRef<'a> {
    ProviderOrderId(&'a str),
    /// Stripe's PaymentIntent, as refunds and disputes name it.
    PaymentIntent(&'a str),
}

#[derive(Debug, Clone, Copy)]
pub struct TakeBack<'a> {
    pub order: OrderRef<'a>,
    pub share: Share,
    pub cause: TakeBackCause<'a>,
    /// Kept on the ledger entry, the order's history and its event.
    pub reason: &'a str,
    /// Who did it (an operator, a provider's refund).
    pub actor: &'a str,
}

/// A take-back as recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TakenBack {
    pub ledger_id: i64,
    pub order_id: Uuid,
    pub user_id: String,
    /// The grant taken back from.
    pub grant_id: i64,
    pub granted: i64,
    pub asked: i64,
    pub taken: i64,
    pub shortfall: i64,
    /// The user's balance right after (now, for an earlier take-back).
    pub balance_after: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TakeBackOutcome {
    /// Taken now.
    Taken(TakenBack),
    /// Taken before; nothing changed this time.
    AlreadyTaken(TakenBack),
    /// No such order.
    NoSuchOrder,
    /// The order never granted credits (no purchase or manual grant).
    NotGranted,
    /// A refund or chargeback whose share earlier take-backs (or expiry)
    /// already covered: nothing written.
    NothingAsked,
}

/// Takes back credits in the caller's transaction (so the caller can record
/// why in the same commit).
pub async fn take_back(
    tx: &mut PgConnection,
    request: TakeBack<'_>,
) -> Result<TakeBackOutcome, sqlx::Error> {
    let (column, value) = match request.order {
        OrderRef::ProviderOrderId(id) => ("provider_order_id", id),
        OrderRef::PaymentIntent(intent) => ("payment_intent", intent),
    };
    let order: Option<(Uuid, String, String, String, String, String, String)> =
        sqlx::query_as(&format!(
            "select id, user_id, status, provider_order_id, package_id,
                    round(amount, 6)::text, currency
             from payment_orders where {column} = $1 for update"
        ))
        .bind(value)
        .fetch_optional(&mut *tx)
        .await?;
    let Some((order_id, user_id, status, provider_order_id, package_id, amount, currency)) = order
    else {
        return Ok(TakeBackOutcome::NoSuchOrder);
    };
    let Some(grant) = order_grant(tx, order_id).await? else {
        return Ok(TakeBackOutcome::NotGranted);
    };
    let (grant_id, granted) = (grant.ledger_id, grant.credits);
    let balance = book::lock_balance(tx, &user_id).await?.unwrap_or(0);
    if let Some(earlier) = earlier(tx, request.cause, grant_id, order_id, &user_id, granted).await?
    {
        return Ok(TakeBackOutcome::AlreadyTaken(TakenBack {
            balance_after: balance,
            ..earlier
        }));
    }

    let (_, expired) = book::expire_due(tx, &user_id).await?;
    let balance = balance - expired;
    // What expired of this grant (just now or earlier) is gone already: it
    // was neither spent nor is it there to take, so it is not asked for.
    // Asking for it would take the same credits twice, out of the user's
    // other purchases, and report them as spent.
    let expired_of_grant: i64 = sqlx::query_scalar(
        "select coalesce(-sum(credits), 0)::int8 from credit_ledger
         where kind = 'expiry' and expired_grant_id = $1",
    )
    .bind(grant_id)
    .fetch_one(&mut *tx)
    .await?;
    // What earlier take-backs of this grant asked for (taken or short),
    // in all and by this cause's kind.
    let (asked_before, asked_before_by_kind): (i64, i64) = sqlx::query_as(
        "select coalesce(sum(-credits + coalesce(shortfall, 0)), 0)::int8,
                coalesce(sum(-credits + coalesce(shortfall, 0))
                         filter (where kind = $3), 0)::int8
         from credit_ledger where reverses_grant_id = $1 and kind = any($2)",
    )
    .bind(grant_id)
    .bind(&TAKE_BACK_KINDS[..])
    .bind(request.cause.kind())
    .fetch_one(&mut *tx)
    .await?;
    let takeable = (granted - expired_of_grant - asked_before).max(0);
    let asked = match request.share {
        Share::All => takeable,
        Share::Credits(credits) => credits.clamp(0, takeable),
        Share::UpTo(total) => (total - asked_before_by_kind).clamp(0, takeable),
    };
    if asked == 0 && request.cause.reference().is_some() {
        // A refund total already taken back (reported late, or after a
        // revoke): nothing to write, nothing to count.
        return Ok(TakeBackOutcome::NothingAsked);
    }
    let taken = asked.min(balance).max(0);
    let shortfall = asked - taken;

    let debit = Debit {
        user_id: &user_id,
        credits: taken,
        kind: request.cause.kind(),
        description: Some(request.reason),
        order_id: Some(order_id),
        reverses_grant_id: Some(grant_id),
        shortfall: Some(shortfall),
        provider_reference: request.cause.reference(),
        draw: Draw::OwnGrantFirst { grant_id },
    };
    let written = book::debit(tx, debit).await?;
    let Some((ledger_id, balance_after)) = written else {
        // Another take-back committed between our look and our insert (it
        // did not lock the order); the database kept it to one.
        let earlier = earlier(tx, request.cause, grant_id, order_id, &user_id, granted)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        return Ok(TakeBackOutcome::AlreadyTaken(TakenBack {
            balance_after: balance,
            ..earlier
        }));
    };
    let history_reason = format!(
        "{}: {taken} credits taken back, {shortfall} short, by {}: {}",
        request.cause.kind(),
        request.actor,
        request.reason
    );
    let event = json!({
        "ledgerId": ledger_id,
        "grantId": grant_id,
        "asked": asked,
        "credits": taken,
        "shortfall": shortfall,
        "userId": user_id,
        "actor": request.actor,
        "reason": request.reason,
        "reference": request.cause.reference(),
    });
    orders::record_take_back(
        tx,
        orders::TakeBackOnOrder {
            order_id,
            taken,
            shortfall,
            status: &status,
            history_reason: &history_reason,
            event_type: request.cause.event_type(),
            event: &event,
        },
    )
    .await?;
    if taken > 0 {
        // The buyer hears of it (never failing the take-back: the notifier
        // sends it later, or parks it).
        let facts = GrantFacts {
            kind: request.cause.notice_kind(),
            order_id: provider_order_id,
            user_id: user_id.clone(),
            package_name: find_bought(&package_id)
                .map_or_else(|| package_id.clone(), |p| p.name.to_owned()),
            package_id,
            credits: taken,
            amount: Usdt::parse(&amount).map_or(amount, |a| a.to_string()),
            currency,
        };
        to_buyer::notice(tx, order_id, ledger_id, &facts, None).await?;
    }
    Ok(TakeBackOutcome::Taken(TakenBack {
        ledger_id,
        order_id,
        user_id,
        grant_id,
        granted,
        asked,
        taken,
        shortfall,
        balance_after,
    }))
}

/// The take-back already recorded for this cause (a revoke of `grant_id`,
/// or the provider's reference), if any (balance left 0 for the caller to
/// fill in).
async fn earlier(
    tx: &mut PgConnection,
    cause: TakeBackCause<'_>,
    grant_id: i64,
    order_id: Uuid,
    user_id: &str,
    granted: i64,
) -> Result<Option<TakenBack>, sqlx::Error> {
    // Each lookup matches its unique index, so neither scans the ledger.
    let row: Option<(i64, i64, Option<i64>)> = match cause.reference() {
        None => {
            sqlx::query_as(
                "select id, -credits, shortfall from credit_ledger
                 where reverses_grant_id = $1 and kind = 'revoke'",
            )
            .bind(grant_id)
            .fetch_optional(&mut *tx)
            .await?
        }
        Some(reference) => {
            sqlx::query_as(
                "select id, -credits, shortfall from credit_ledger
                 where kind = $1 and provider_reference = $2",
            )
            .bind(cause.kind())
            .bind(reference)
            .fetch_optional(&mut *tx)
            .await?
        }
    };
    Ok(row.map(|(ledger_id, taken, shortfall)| {
        let shortfall = shortfall.unwrap_or(0);
        TakenBack {
            ledger_id,
            order_id,
            user_id: user_id.to_owned(),
            grant_id,
            granted,
            asked: taken + shortfall,
            taken,
            shortfall,
            balance_after: 0,
        }
    }))
}
