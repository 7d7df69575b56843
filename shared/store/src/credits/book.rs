//! The credit book: the only writer of `credit_ledger`, `credit_lots` and
//! `user_credits`. Every other module moves credits through it, so the
//! rules that tie the three tables together are written once:
//!
//! - the balance is the sum of the user's ledger entries: every entry
//!   changes the balance in the same statement or transaction;
//! - a grant that expires is a lot (`granted`, `remaining`); a grant that
//!   never expires is not;
//! - unexpired lots never hold more than the balance: a spend draws the
//!   lots earliest-expiring first ([`Draw::EarliestFirst`]); a take-back
//!   draws its own grant's lot first and the others only by what would
//!   otherwise exceed the new balance ([`Draw::OwnGrantFirst`]); an expiry
//!   empties the lot and takes its remainder off the balance;
//! - lock order, everywhere credits move: the user's balance row
//!   ([`lock_balance`]), then their lots. The worker's grants, spends,
//!   expiry and the runbooks all follow it, so they cannot deadlock one
//!   another.
//!
//! The worker's batch grant is one statement for the whole batch; its
//! credit part is [`batch_grant_ctes!`], composed there.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// The batch grant's common table expressions on the credit tables, for
/// `ledger::writes` to compose into its one statement: `ledger` (the
/// `purchase_grant` entries, from `$1` users, `$2` credits, `$3` orders, `$4`
/// deliveries, `$21` expiries), `lots` (a lot for each entry that expires)
/// and `balances` (`$5` users, `$6` credits added).
macro_rules! batch_grant_ctes {
    () => {
        "ledger as (
             insert into credit_ledger (user_id, credits, kind, order_id, delivery_id, expires_at)
             select user_id, credits, 'purchase_grant', order_id, delivery_id, expires_at
             from unnest($1::text[], $2::int8[], $3::uuid[], $4::int8[], $21::timestamptz[])
                  as g(user_id, credits, order_id, delivery_id, expires_at)
             returning id, user_id, credits, expires_at
         ), lots as (
             insert into credit_lots (grant_id, user_id, expires_at, granted, remaining)
             select id, user_id, expires_at, credits, credits from ledger
             where expires_at is not null
         ), balances as (
             insert into user_credits (user_id, balance)
             select * from unnest($5::text[], $6::int8[])
             on conflict (user_id) do update
                 set balance = user_credits.balance + excluded.balance, updated_at = now()
         )"
    };
}
pub(crate) use batch_grant_ctes;

/// Gives the user an account (a zero balance) if they have none.
pub async fn open_account(tx: &mut PgConnection, user_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into user_credits (user_id, balance) values ($1, 0) on conflict do nothing",
    )
    .bind(user_id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Locks the user's balance row (the first lock wherever credits move):
/// their balance, or `None` when they have no account.
pub async fn lock_balance(
    tx: &mut PgConnection,
    user_id: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("select balance from user_credits where user_id = $1 for update")
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await
}

/// [`lock_balance`], or `None` at once when another transaction holds it.
pub async fn try_lock_balance(
    tx: &mut PgConnection,
    user_id: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("select balance from user_credits where user_id = $1 for update skip locked")
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await
}

/// Expires `user_id`'s due lots; the caller holds the user's balance row
/// locked. Each due lot is emptied, an `expiry` entry records its remainder
/// and the balance loses it. Returns how many grants were expired and the
/// credits removed.
pub async fn expire_due(tx: &mut PgConnection, user_id: &str) -> Result<(u64, i64), sqlx::Error> {
    let (grants, credits): (i64, i64) = sqlx::query_as(
        "with due as (
             select grant_id, remaining from credit_lots
             where user_id = $1 and remaining > 0 and expires_at <= now()
             order by grant_id
             for update
         ), emptied as (
             update credit_lots l set remaining = 0
             from due where l.grant_id = due.grant_id
         ), entries as (
             insert into credit_ledger (user_id, credits, kind, expired_grant_id)
             select $1, -remaining, 'expiry', grant_id from due
         ), balance as (
             update user_credits
             set balance = balance - (select coalesce(sum(remaining), 0) from due),
                 updated_at = now()
             where user_id = $1 and exists (select 1 from due)
         )
         select count(*), coalesce(sum(remaining), 0)::int8 from due",
    )
    .bind(user_id)
    .fetch_one(&mut *tx)
    .await?;
    Ok((u64::try_from(grants).unwrap_or(0), credits))
}

/// A grant by hand, as the book writes it.
#[derive(Debug, Clone, Copy)]
pub struct HandGrant<'a> {
    pub user_id: &'a str,
    pub credits: i64,
    /// The order it stands in for, if any.
    pub order_id: Option<Uuid>,
    pub idempotency_key: &'a str,
    pub description: &'a str,
    /// Days the credits stay valid; `None` never expires (no lot).
    pub valid_days: Option<i32>,
}

/// What a grant by hand wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandGranted {
    pub ledger_id: i64,
    pub expires_at: Option<DateTime<Utc>>,
    pub granted_at: DateTime<Utc>,
    pub balance_after: i64,
}

/// Writes a `manual_grant` entry, its lot (when it expires) and the
/// balance; the caller holds the balance row locked. `None` when the key
/// was committed meanwhile by another run (the database keeps one).
pub async fn grant_by_hand(
    tx: &mut PgConnection,
    grant: HandGrant<'_>,
) -> Result<Option<HandGranted>, sqlx::Error> {
    let inserted: Option<(i64, Option<DateTime<Utc>>, DateTime<Utc>)> = sqlx::query_as(
        "insert into credit_ledger
             (user_id, credits, kind, order_id, idempotency_key, description, expires_at)
         values ($1, $2, 'manual_grant', $3, $4, $5,
                 now() + make_interval(days => $6))
         on conflict (idempotency_key) where kind = 'manual_grant' do nothing
         returning id, expires_at, created_at",
    )
    .bind(grant.user_id)
    .bind(grant.credits)
    .bind(grant.order_id)
    .bind(grant.idempotency_key)
    .bind(grant.description)
    .bind(grant.valid_days)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((ledger_id, expires_at, granted_at)) = inserted else {
        return Ok(None);
    };
    if let Some(expires_at) = expires_at {
        sqlx::query(
            "insert into credit_lots (grant_id, user_id, expires_at, granted, remaining)
             values ($1, $2, $3, $4, $4)",
        )
        .bind(ledger_id)
        .bind(grant.user_id)
        .bind(expires_at)
        .bind(grant.credits)
        .execute(&mut *tx)
        .await?;
    }
    let balance_after: i64 = sqlx::query_scalar(
        "update user_credits set balance = balance + $2, updated_at = now()
         where user_id = $1 returning balance",
    )
    .bind(grant.user_id)
    .bind(grant.credits)
    .fetch_one(&mut *tx)
    .await?;
    Ok(Some(HandGranted {
        ledger_id,
        expires_at,
        granted_at,
        balance_after,
    }))
}

/// Credits leaving a balance: a spend, or a take-back of a grant.
#[derive(Debug, Clone, Copy)]
pub struct Debit<'a> {
    pub user_id: &'a str,
    /// Taken from the balance (not negative; the entry records minus this).
    pub credits: i64,
    /// The ledger kind: `spend`, `revoke`, `refund` or `chargeback`.
    pub kind: &'a str,
    pub description: Option<&'a str>,
    /// A take-back's order, its grant, what it could not take (spent
    /// already) and the provider's reference; all `None` for a spend.
    pub order_id: Option<Uuid>,
    pub reverses_grant_id: Option<i64>,
    pub shortfall: Option<i64>,
    pub provider_reference: Option<&'a str>,
    /// Which lots give up the credits.
    pub draw: Draw,
}

/// Which lots a debit draws from; see the module's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Draw {
    /// A spend: the earliest-expiring lots until covered; what the lots do
    /// not cover comes from credits that never expire.
    EarliestFirst,
    /// A take-back of `grant_id`: its own lot first, then the others only
    /// by what would otherwise exceed the new balance.
    OwnGrantFirst { grant_id: i64 },
}

/// Writes the debit's entry, takes it off the balance and draws its lots,
/// together; the caller holds the balance row locked (and has checked the
/// balance covers it). The entry's id and the balance after, or `None`
/// when the database refused the entry as a duplicate (another take-back
/// of the same cause committed meanwhile): then nothing was written.
pub async fn debit(
    tx: &mut PgConnection,
    debit: Debit<'_>,
) -> Result<Option<(i64, i64)>, sqlx::Error> {
    let ledger_id: Option<i64> = sqlx::query_scalar(
        "insert into credit_ledger
             (user_id, credits, kind, order_id, reverses_grant_id, shortfall, description,
              provider_reference)
         values ($1, -$2::int8, $3, $4, $5, $6, $7, $8)
         on conflict do nothing
         returning id",
    )
    .bind(debit.user_id)
    .bind(debit.credits)
    .bind(debit.kind)
    .bind(debit.order_id)
    .bind(debit.reverses_grant_id)
    .bind(debit.shortfall)
    .bind(debit.description)
    .bind(debit.provider_reference)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(ledger_id) = ledger_id else {
        return Ok(None);
    };
    // No account: nothing to take (a take-back of a user who never held
    // credits takes 0).
    let balance_after: i64 = sqlx::query_scalar(
        "update user_credits set balance = balance - $2, updated_at = now()
         where user_id = $1 returning balance",
    )
    .bind(debit.user_id)
    .bind(debit.credits)
    .fetch_optional(&mut *tx)
    .await?
    .unwrap_or(0);
    draw_lots(tx, &debit, balance_after).await?;
    Ok(Some((ledger_id, balance_after)))
}

/// Draws the debit's credits from the user's lots, locked after the
/// balance row.
async fn draw_lots(
    tx: &mut PgConnection,
    debit: &Debit<'_>,
    balance_after: i64,
) -> Result<(), sqlx::Error> {
    if debit.credits == 0 {
        return Ok(());
    }
    let lots: Vec<(i64, i64)> = sqlx::query_as(
        "select grant_id, remaining from credit_lots
         where user_id = $1 and remaining > 0
         order by expires_at, grant_id
         for update",
    )
    .bind(debit.user_id)
    .fetch_all(&mut *tx)
    .await?;
    let takes = match debit.draw {
        Draw::EarliestFirst => earliest_first(&lots, debit.credits),
        Draw::OwnGrantFirst { grant_id } => own_grant_first(
            &lots,
            grant_id,
            debit.credits,
            balance_after + debit.credits,
        ),
    };
    if takes.is_empty() {
        return Ok(());
    }
    let (grant_ids, amounts): (Vec<i64>, Vec<i64>) = takes.into_iter().unzip();
    sqlx::query(
        "update credit_lots l set remaining = l.remaining - d.take
         from unnest($1::int8[], $2::int8[]) as d(grant_id, take)
         where l.grant_id = d.grant_id",
    )
    .bind(&grant_ids)
    .bind(&amounts)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// How much to take from each lot (given earliest-expiring first) to cover
/// `credits`.
fn earliest_first(lots: &[(i64, i64)], mut credits: i64) -> Vec<(i64, i64)> {
    let mut takes = Vec::new();
    for &(grant_id, remaining) in lots {
        if credits == 0 {
            break;
        }
        let take = remaining.min(credits);
        takes.push((grant_id, take));
        credits -= take;
    }
    takes
}

/// What to take from each lot (given earliest-expiring first) when `taken`
/// credits leave a balance of `balance`: first from the grant's own lot,
/// then from the others only what keeps the lots within the new balance.
fn own_grant_first(
    lots: &[(i64, i64)],
    own_grant: i64,
    taken: i64,
    balance: i64,
) -> Vec<(i64, i64)> {
    let mut takes = Vec::new();
    let mut held: i64 = lots.iter().map(|&(_, remaining)| remaining).sum();
    if let Some(&(_, remaining)) = lots.iter().find(|&&(id, _)| id == own_grant) {
        let take = remaining.min(taken);
        if take > 0 {
            takes.push((own_grant, take));
            held -= take;
        }
    }
    let mut excess = held - (balance - taken);
    for &(id, remaining) in lots.iter().filter(|&&(id, _)| id != own_grant) {
        if excess <= 0 {
            break;
        }
        let take = remaining.min(excess);
        takes.push((id, take));
        excess -= take;
    }
    takes
}

#[cfg(test)]
mod tests {
    use super::{earliest_first, own_grant_first};

    #[test]
    fn a_spend_takes_from_the_first_lots_until_covered() {
        let lots = [(1, 100), (2, 50), (3, 500)];
        assert_eq!(earliest_first(&lots, 120), vec![(1, 100), (2, 20)]);
        assert_eq!(earliest_first(&lots, 100), vec![(1, 100)]);
        assert_eq!(
            earliest_first(&lots, 1000),
            vec![(1, 100), (2, 50), (3, 500)]
        );
        assert_eq!(earliest_first(&[], 10), vec![]);
    }

    #[test]
    fn the_orders_own_lot_goes_first() {
        // Balance 900: lot 1 (own) 300, lot 2 200, 400 that never expire.
        let lots = [(2, 200), (1, 300)];
        assert_eq!(own_grant_first(&lots, 1, 300, 900), vec![(1, 300)]);
    }

    #[test]
    fn other_lots_shrink_only_past_the_new_balance() {
        // Balance 500, all in lots: own lot 100 left (200 of it spent).
        // Taking 300 leaves 200; the other lots must come down to it.
        let lots = [(2, 250), (3, 150), (1, 100)];
        assert_eq!(
            own_grant_first(&lots, 1, 300, 500),
            vec![(1, 100), (2, 200)]
        );
    }

    #[test]
    fn credits_that_never_expire_are_taken_before_other_lots() {
        // Balance 1000: lot 2 holds 300, 700 never expire; the grant had no lot.
        let lots = [(2, 300)];
        assert_eq!(own_grant_first(&lots, 1, 500, 1000), vec![]);
        assert_eq!(own_grant_first(&lots, 1, 900, 1000), vec![(2, 200)]);
    }

    #[test]
    fn nothing_taken_touches_no_lot() {
        assert_eq!(own_grant_first(&[(1, 0)], 1, 0, 0), vec![]);
    }
}
