//! `POST /api/payments/confirm`: what happened to the caller's order. It
//! only reads: credits are granted by the webhook path alone (its signature is the proof of payment), so
//! polling this can never grant, early or twice.
//!
//! An order the worker's timeout job expired answers `409 PAYMENT_TIMEOUT`
//! (with `details.orderId` and `details.expiredAt`), so the frontend can
//! offer a new order. A payment that still arrives completes it, and
//! confirm then says so like for any completed order.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use ledgerhook_store::user_orders::{self, OrderProgress};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::User;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::metrics;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/payments/confirm", post(confirm))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Confirm {
    order_id: String,
}

async fn confirm(
    State(state): State<AppState>,
    user: User,
    JsonBody(request): JsonBody<Confirm>,
) -> Result<Json<Value>, ApiError> {
    if let Err(wait) = state.confirm_limit.check(&state.pool, &user.id).await? {
        metrics::rate_limited(state.confirm_limit.action);
        return Err(ApiError::RateLimited {
            retry_after_secs: wait,
        });
    }
    // Another user's order is indistinguishable from no order at all.
    let Some(OrderProgress {
        provider,
        currency,
        status,
        total_credits: credits,
        review_reason,
        paid_at,
        completed_at,
        expired_at,
    }) = user_orders::progress(&state.pool, &request.order_id, &user.id).await?
    else {
        return Err(ApiError::OrderNotFound);
    };
    if status == "expired" && review_reason.is_none() {
        metrics::payment_timeout();
        return Err(ApiError::PaymentTimeout {
            order_id: request.order_id,
            expired_at,
        });
    }
    let completed = status == "completed";
    let message = match (status.as_str(), review_reason.is_some()) {
        (_, true) if !completed => {
            "the payment did not match the order and is being reviewed; no credits were added yet"
                .to_owned()
        }
        ("completed", _) => format!("{credits} credits were added to your balance"),
        ("paid", _) => "payment received; the credits are being added".to_owned(),
        ("failed", _) => "the payment failed; no credits were added".to_owned(),
        ("cancelled", _) => "the order was cancelled; no credits were added".to_owned(),
        _ => "waiting for the payment to be confirmed".to_owned(),
    };
    Ok(Json(json!({
        "success": completed,
        "orderId": request.order_id,
        "provider": provider,
        "currency": currency,
        "status": status,
        "creditsAdded": if completed { credits } else { 0 },
        "underReview": review_reason.is_some(),
        "message": message,
        "paidAt": paid_at,
        "completedAt": completed_at,
    })))
}
