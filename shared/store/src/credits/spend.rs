//! Spending credits: one transaction, never below zero, never twice for one
//! idempotency key. The one owner of `credit_spends` (a key's spend); the
//! credits themselves move through [`super::book`].

use sqlx::PgPool;

use super::book::{self, Debit, Draw};

/// A request to spend, as the API received it (already validated).
#[derive(Debug, Clone, Copy)]
pub struct Spend<'a> {
    pub user_id: &'a str,
    pub credits: i64,
    pub description: Option<&'a str>,
    pub idempotency_key: &'a str,
    /// The API key that spent for the user, when their backend did.
    pub api_key: Option<&'a str>,
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
    let balance = book::lock_balance(&mut tx, request.user_id).await?;

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
    let (_, expired) = book::expire_due(&mut tx, request.user_id).await?;
    let available = balance - expired;
    if available < request.credits {
        // Expiring what was due is still right to keep.
        tx.commit().await?;
        return Ok(SpendOutcome::Insufficient { available });
    }

    let debit = Debit {
        user_id: request.user_id,
        credits: request.credits,
        kind: "spend",
        description: request.description,
        order_id: None,
        reverses_grant_id: None,
        shortfall: None,
        provider_reference: None,
        draw: Draw::EarliestFirst,
    };
    // A spend's entry has nothing unique to collide with.
    let (ledger_id, balance_after) = book::debit(&mut tx, debit)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    sqlx::query(
        "insert into credit_spends (user_id, idempotency_key, credits, description, ledger_id, balance_after, api_key)
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(request.user_id)
    .bind(request.idempotency_key)
    .bind(request.credits)
    .bind(request.description)
    .bind(ledger_id)
    .bind(balance_after)
    .bind(request.api_key)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(SpendOutcome::Spent {
        ledger_id,
        balance_after,
        replayed: false,
    })
}
