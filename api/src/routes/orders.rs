//! `POST /api/payments/orders`: creates the order with Crossmint, then
//! records it pending (user, package snapshot, expected price) before the
//! frontend ever sees the client secret, so the buyer cannot pay for an
//! order we do not know.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use ledgerhook_shared::domain::{CURRENCY, Package, find_package};
use ledgerhook_shared::ledger::orders::{self, CreatedFrom, PendingOrder};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::User;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::metrics;
use crate::routes::packages::package_json;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/payments/orders", post(create))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateOrder {
    package_id: String,
    /// The buyer's wallet, when the frontend knows it already.
    payer_address: Option<String>,
}

async fn create(
    State(state): State<AppState>,
    user: User,
    JsonBody(request): JsonBody<CreateOrder>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let package = find_package(&request.package_id).ok_or_else(|| ApiError::InvalidPackage {
        package_id: request.package_id.clone(),
    })?;
    if request
        .payer_address
        .as_deref()
        .is_some_and(|a| a.is_empty() || a.len() > 128)
    {
        return Err(ApiError::invalid_request(
            "payerAddress must be 1 to 128 characters",
        ));
    }
    let created = state
        .crossmint
        .create_order(package, request.payer_address.as_deref())
        .await
        .map_err(|e| {
            metrics::crossmint_failure(e.reason());
            ApiError::Crossmint(e)
        })?;
    let valid_days = state.credit_terms.valid_days(package.id);
    record_pending(&state, &user, package, &created.order_id, valid_days).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "orderId": created.order_id,
            "clientSecret": created.client_secret.expose(),
            "status": "pending",
            "package": package_json(package),
            "amount": package.price.to_string(),
            "currency": CURRENCY,
            "credits": package.total_credits(),
            "creditsValidDays": valid_days,
        })),
    ))
}

async fn record_pending(
    state: &AppState,
    user: &User,
    package: &Package,
    crossmint_order_id: &str,
    valid_days: Option<i32>,
) -> Result<(), ApiError> {
    let order = PendingOrder {
        crossmint_order_id,
        user_id: &user.id,
        package,
        credits_valid_days: valid_days,
    };
    let inserted = orders::insert_pending(&state.pool, CreatedFrom::Api, &[order]).await?;
    if !inserted.is_empty() {
        return Ok(());
    }
    // Already there: its webhook beat us and the worker built it from
    // metadata. Fine if it is this user's; anything else is not ours to fix.
    match orders::owner(&state.pool, crossmint_order_id).await? {
        Some(owner) if owner == user.id => Ok(()),
        _ => Err(ApiError::Internal(anyhow::anyhow!(
            "Crossmint order {crossmint_order_id} is already recorded for another user"
        ))),
    }
}
