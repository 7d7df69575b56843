//! `GET /api/v1/user/credits` (the balance, and what expires soon),
//! `GET /api/v1/user/credits/ledger` (every movement, newest first, a page
//! at a time) and `POST /api/v1/user/credits/consume` (spending, once per
//! idempotency key).
//! A spend is then counted in the day's usage (`ledgerhook_store::usage`),
//! which may fail without failing the spend.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ledgerhook_store::credits::{self, Spend, SpendOutcome};
use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;
use crate::auth::{Spender, User};
use crate::error::{ApiError, Chain};
use crate::extract::JsonBody;
use crate::metrics;

/// "Expiring soon" on the balance page.
const EXPIRING_WITHIN_DAYS: i32 = 30;
const MAX_KEY_CHARS: usize = 200;
const MAX_DESCRIPTION_CHARS: usize = 500;
/// Far above any balance; keeps arithmetic away from overflow.
const MAX_SPEND: i64 = 1_000_000_000_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/user/credits", get(balance))
        .route("/api/v1/user/credits/ledger", get(ledger))
        .route("/api/v1/user/credits/consume", post(consume))
}

/// The user's own token, or the product's backend's API key naming the user.
async fn balance(State(state): State<AppState>, user: Spender) -> Result<Response, ApiError> {
    let view = credits::credits_view(&state.pool, &user.user_id, EXPIRING_WITHIN_DAYS).await?;
    let expiring_total: i64 = view.expiring.iter().map(|e| e.credits).sum();
    Ok(Json(json!({
        "userId": user.user_id,
        "credits": view.balance,
        "expiringSoon": {
            "withinDays": EXPIRING_WITHIN_DAYS,
            "credits": expiring_total,
            "nextExpiryAt": view.expiring.first().map(|e| e.expires_at),
            "lots": view.expiring.iter()
                .map(|e| json!({"credits": e.credits, "expiresAt": e.expires_at}))
                .collect::<Vec<_>>(),
        },
    }))
    .into_response())
}

const DEFAULT_LEDGER_PAGE: i64 = 50;
const MAX_LEDGER_PAGE: i64 = 200;

#[derive(Deserialize)]
struct LedgerPage {
    limit: Option<i64>,
    /// The `nextCursor` of the page before: entries older than it.
    cursor: Option<String>,
}

/// Every movement of the caller's credits with the balance after it: a
/// cursor (not a page number), so entries written meanwhile neither repeat
/// nor hide one. `nextCursor` is null on the last page.
async fn ledger(
    State(state): State<AppState>,
    user: User,
    page: Result<Query<LedgerPage>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(page) = page.map_err(|e| ApiError::invalid_request(e.body_text()))?;
    let limit = page.limit.unwrap_or(DEFAULT_LEDGER_PAGE);
    if !(1..=MAX_LEDGER_PAGE).contains(&limit) {
        return Err(ApiError::invalid_request(format!(
            "limit is 1 to {MAX_LEDGER_PAGE}"
        )));
    }
    let before =
        match page.cursor.as_deref() {
            None => None,
            Some(cursor) => Some(cursor.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(
                || ApiError::invalid_request("cursor is the nextCursor of an earlier page"),
            )?),
        };
    // One more than asked tells whether another page follows.
    let mut entries = credits::ledger_page(&state.pool, &user.id, before, limit + 1).await?;
    let more = entries.len() > limit as usize;
    entries.truncate(limit as usize);
    let next_cursor = more
        .then(|| entries.last().map(|e| e.id.to_string()))
        .flatten();
    Ok(Json(json!({
        "userId": user.id,
        "entries": entries.iter().map(|e| json!({
            "id": e.id,
            "at": e.at,
            "kind": e.kind,
            "credits": e.credits,
            "balanceAfter": e.balance_after,
            "orderId": e.order,
            "grantId": e.grant_id,
            "expiresAt": e.expires_at,
            "description": e.spend_description,
        })).collect::<Vec<_>>(),
        "nextCursor": next_cursor,
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Consume {
    amount: i64,
    description: Option<String>,
    idempotency_key: String,
}

/// The user's own token, or the product's backend's API key naming the
/// user (`Ledgerhook-User`); which key spent is kept with the spend.
async fn consume(
    State(state): State<AppState>,
    spender: Spender,
    JsonBody(request): JsonBody<Consume>,
) -> Result<Response, ApiError> {
    if !(1..=MAX_SPEND).contains(&request.amount) {
        return Err(ApiError::invalid_request(format!(
            "amount is a whole number of credits from 1 to {MAX_SPEND}"
        )));
    }
    let key_chars = request.idempotency_key.chars().count();
    if request.idempotency_key.trim().is_empty() || key_chars > MAX_KEY_CHARS {
        return Err(ApiError::invalid_request(format!(
            "idempotencyKey is 1 to {MAX_KEY_CHARS} characters"
        )));
    }
    if request
        .description
        .as_deref()
        .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_CHARS)
    {
        return Err(ApiError::invalid_request(format!(
            "description is at most {MAX_DESCRIPTION_CHARS} characters"
        )));
    }
    let outcome = credits::spend(
        &state.pool,
        Spend {
            user_id: &spender.user_id,
            credits: request.amount,
            description: request.description.as_deref(),
            idempotency_key: &request.idempotency_key,
            api_key: spender.api_key.as_deref(),
        },
    )
    .await
    .map_err(ApiError::CreditsUpdateFailed)?;
    match outcome {
        SpendOutcome::Spent {
            ledger_id,
            balance_after,
            replayed,
        } => {
            // A replay was counted when it was spent.
            if !replayed {
                record_usage(&state, &spender.user_id, request.amount).await;
            }
            Ok((
                StatusCode::OK,
                Json(json!({
                    "success": true,
                    "spent": request.amount,
                    "remainingCredits": balance_after,
                    "transactionId": ledger_id,
                    "replayed": replayed,
                })),
            )
                .into_response())
        }
        SpendOutcome::Insufficient { available } => Err(ApiError::InsufficientCredits {
            available,
            requested: request.amount,
        }),
        SpendOutcome::KeyReused { first_credits } => Err(ApiError::IdempotencyKeyReused {
            first_amount: first_credits,
        }),
    }
}

/// Counts the committed spend in the day's usage. Not critical: a failure is
/// logged and counted, and the spend answers as usual.
async fn record_usage(state: &AppState, user_id: &str, credits: i64) {
    if let Err(e) = ledgerhook_store::usage::record_spend(&state.pool, user_id, credits).await {
        metrics::usage_write_failed();
        tracing::warn!(error = %Chain(&e), "usage not recorded; the spend itself succeeded");
    }
}
