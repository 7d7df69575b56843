//! Erasing a user from the credit tables: every row re-keyed to the
//! pseudonym, amounts untouched, so the balance is still the sum of the
//! ledger and the lots still within it, only under another name. Spends'
//! descriptions are the product's free text about what the user did, and
//! go. Called by `crate::erasure` in its transaction.

use sqlx::PgConnection;

/// What moved to the pseudonym.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rekeyed {
    pub ledger_entries: u64,
    /// The balance now held under the pseudonym (0 with no balance row).
    pub balance: i64,
}

/// Re-keys `user`'s balance, ledger, lots and spends to `pseudonym`. The
/// balance row is locked first, as every credit movement does (the
/// book's lock order: balance, then lots), so a spend waiting on it
/// finds no balance under the old id once this commits.
pub async fn rekey(
    tx: &mut PgConnection,
    user: &str,
    pseudonym: &str,
) -> Result<Rekeyed, sqlx::Error> {
    let balance: Option<i64> =
        sqlx::query_scalar("select balance from user_credits where user_id = $1 for update")
            .bind(user)
            .fetch_optional(&mut *tx)
            .await?;
    sqlx::query("update user_credits set user_id = $2, updated_at = now() where user_id = $1")
        .bind(user)
        .bind(pseudonym)
        .execute(&mut *tx)
        .await?;
    sqlx::query("update credit_lots set user_id = $2 where user_id = $1")
        .bind(user)
        .bind(pseudonym)
        .execute(&mut *tx)
        .await?;
    let entries =
        sqlx::query("update credit_ledger set user_id = $2, description = null where user_id = $1")
            .bind(user)
            .bind(pseudonym)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    sqlx::query("update credit_spends set user_id = $2, description = null where user_id = $1")
        .bind(user)
        .bind(pseudonym)
        .execute(&mut *tx)
        .await?;
    Ok(Rekeyed {
        ledger_entries: entries,
        balance: balance.unwrap_or(0),
    })
}

/// The delivery rows behind `user`'s ledger entries (grants and take-backs
/// caused by a delivery).
pub async fn delivery_rows(tx: &mut PgConnection, user: &str) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "select distinct delivery_id from credit_ledger
         where user_id = $1 and delivery_id is not null",
    )
    .bind(user)
    .fetch_all(&mut *tx)
    .await
}

/// Whether the credit tables know `user` at all.
pub async fn knows(tx: &mut PgConnection, user: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "select exists (select 1 from user_credits where user_id = $1)
             or exists (select 1 from credit_ledger where user_id = $1)
             or exists (select 1 from credit_spends where user_id = $1)",
    )
    .bind(user)
    .fetch_one(&mut *tx)
    .await
}
