//! Spending credits: one transaction, never below zero, never twice for one
//! idempotency key.

use sqlx::{PgConnection, PgPool};

use super::expiry::expire_user_locked;

/// A request to spend, as the API received it (already validated).
#[derive(Debug, Clone, Copy)]
pub struct Spend<'a> {
    pub user_id: &'a str,
    pub credits: i64,
    pub description: Option<&'a str>,
    pub idempotency_key: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpendOutcome {
    /// Spent now, or earlier under the same key with the same amount
    /// (`replayed`): the balance is what it was right after that spend.
    Spent {
        ledger_id: i64,
        balance_after: i64,
        replayed: bool,
    },
    /// Not enough credits; nothing was spent.
    Insufficient { available: i64 },
    /// The key was used before for a different amount; nothing was spent.
    KeyReused { first_credits: i64 },
}

/// Spends in one transaction. The user's balance row is locked first, which
/// serialises the user's spends (so two racing spends cannot both pass the
/// balance check, and a key is checked and claimed atomically), then
/// credits whose time has come are expired, then the spend draws from the
/// earliest-expiring credits first.
pub async fn spend(pool: &PgPool, request: Spend<'_>) -> Result<SpendOutcome, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let balance: Option<i64> =
        sqlx::query_scalar("select balance from user_credits where user_id = $1 for update")
            .bind(request.user_id)
            .fetch_optional(&mut *tx)
            .await?;

    let earlier: Option<(i64, i64, i64)> = sqlx::query_as(
        "select credits, ledger_id, balance_after from credit_spends
         where user_id = $1 and idempotency_key = $2",
    )
    .bind(request.user_id)
    .bind(request.idempotency_key)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((credits, ledger_id, balance_after)) = earlier {
        return Ok(if credits == request.credits {
            SpendOutcome::Spent {
                ledger_id,
                balance_after,
                replayed: true,
            }
        } else {
            SpendOutcome::KeyReused {
                first_credits: credits,
            }
        });
    }

    let Some(balance) = balance else {
        return Ok(SpendOutcome::Insufficient { available: 0 });
    };
    let (_, expired) = expire_user_locked(&mut tx, request.user_id).await?;
    let available = balance - expired;
    if available < request.credits {
        // Expiring what was due is still right to keep.
        tx.commit().await?;
        return Ok(SpendOutcome::Insufficient { available });
    }

    draw_from_lots(&mut tx, request.user_id, request.credits).await?;
    let (ledger_id, balance_after): (i64, i64) = sqlx::query_as(
        "with entry as (
             insert into credit_ledger (user_id, credits, kind, description)
             values ($1, -$2::int8, 'spend', $3)
             returning id
         ), balance as (
             update user_credits set balance = balance - $2, updated_at = now()
             where user_id = $1
             returning balance
         )
         select (select id from entry), (select balance from balance)",
    )
    .bind(request.user_id)
    .bind(request.credits)
    .bind(request.description)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "insert into credit_spends (user_id, idempotency_key, credits, description, ledger_id, balance_after)
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(request.user_id)
    .bind(request.idempotency_key)
    .bind(request.credits)
    .bind(request.description)
    .bind(ledger_id)
    .bind(balance_after)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(SpendOutcome::Spent {
        ledger_id,
        balance_after,
        replayed: false,
    })
}

/// Takes `credits` from the user's live lots, earliest-expiring first; what
/// the lots do not cover comes from credits that never expire.
async fn draw_from_lots(
    tx: &mut PgConnection,
    user_id: &str,
    credits: i64,
) -> Result<(), sqlx::Error> {
    let lots: Vec<(i64, i64)> = sqlx::query_as(
        "select grant_id, remaining from credit_lots
         where user_id = $1 and remaining > 0
         order by expires_at, grant_id
         for update",
    )
    .bind(user_id)
    .fetch_all(&mut *tx)
    .await?;
    let (grant_ids, takes) = allocate(&lots, credits);
    if grant_ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "update credit_lots l set remaining = l.remaining - d.take
         from unnest($1::int8[], $2::int8[]) as d(grant_id, take)
         where l.grant_id = d.grant_id",
    )
    .bind(&grant_ids)
    .bind(&takes)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// How much to take from each lot (in the order given) to cover `credits`.
fn allocate(lots: &[(i64, i64)], mut credits: i64) -> (Vec<i64>, Vec<i64>) {
    let mut grant_ids = Vec::new();
    let mut takes = Vec::new();
    for &(grant_id, remaining) in lots {
        if credits == 0 {
            break;
        }
        let take = remaining.min(credits);
        grant_ids.push(grant_id);
        takes.push(take);
        credits -= take;
    }
    (grant_ids, takes)
}

#[cfg(test)]
mod tests {
    use super::allocate;

    #[test]
    fn takes_from_the_first_lots_until_covered() {
        let lots = [(1, 100), (2, 50), (3, 500)];
        assert_eq!(allocate(&lots, 120), (vec![1, 2], vec![100, 20]));
        assert_eq!(allocate(&lots, 100), (vec![1], vec![100]));
        assert_eq!(allocate(&lots, 1000), (vec![1, 2, 3], vec![100, 50, 500]));
        assert_eq!(allocate(&[], 10), (vec![], vec![]));
    }
}
