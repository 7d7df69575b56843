//! `GET /api/payments/history`: the caller's orders, newest first, a page
//! at a time, with statistics over all of them (orders by outcome, total
//! spent, credits earned) for the frontend's summary. Amounts are exact
//! decimal strings (six places), computed by PostgreSQL's numeric, each in
//! its order's `currency` (USDT for Crossmint, USD for Stripe). The
//! packages cost the same numbers in both, so `totalSpent` adds them at
//! par; `totalSpentByCurrency` keeps them apart.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use ledgerhook_store::user_orders::{self, OrderRow};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::User;
use crate::error::ApiError;

const DEFAULT_PAGE_SIZE: i64 = 20;
const MAX_PAGE_SIZE: i64 = 100;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/payments/history", get(history))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    page: Option<i64>,
    page_size: Option<i64>,
}

async fn history(
    State(state): State<AppState>,
    user: User,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(page) = page.map_err(|e| ApiError::invalid_request(e.body_text()))?;
    let number = page.page.unwrap_or(1);
    let size = page.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
    if number < 1 || !(1..=MAX_PAGE_SIZE).contains(&size) || number > i64::MAX / MAX_PAGE_SIZE {
        return Err(ApiError::invalid_request(format!(
            "page starts at 1; pageSize is 1 to {MAX_PAGE_SIZE}"
        )));
    }
    let orders = user_orders::page(&state.pool, &user.id, size, (number - 1) * size).await?;
    let stats = user_orders::statistics(&state.pool, &user.id).await?;
    let total_pages = (stats.total_orders + size - 1) / size;
    Ok(Json(json!({
        "userId": user.id,
        "orders": orders.into_iter().map(order_json).collect::<Vec<_>>(),
        "pagination": {
            "page": number,
            "pageSize": size,
            "totalOrders": stats.total_orders,
            "totalPages": total_pages,
        },
        "statistics": {
            "totalOrders": stats.total_orders,
            "successfulOrders": stats.successful_orders,
            "failedOrders": stats.failed_orders,
            "totalSpent": stats.total_spent,
            "totalSpentByCurrency": stats.total_spent_by_currency,
            "totalCreditsEarned": stats.total_credits_earned,
            "averageOrderValue": stats.average_order_value,
            "averageOrderValueByCurrency": stats.average_order_value_by_currency,
            "refundedOrders": stats.refunded_orders,
            "chargedBackOrders": stats.charged_back_orders,
            "revokedOrders": stats.revoked_orders,
            "creditsTakenBack": stats.credits_taken_back,
            "firstPurchaseAt": stats.first_purchase_at,
            "lastPurchaseAt": stats.last_purchase_at,
        },
        "currentStatus": {
            "pendingOrders": stats.pending_orders,
            "creditsAwaitingConfirmation": stats.credits_awaiting_confirmation,
        },
    })))
}

fn order_json(order: OrderRow) -> Value {
    json!({
        "orderId": order.provider_order_id,
        "provider": order.provider,
        "packageId": order.package_id,
        "packageSnapshot": order.package_snapshot,
        "amount": order.amount,
        "currency": order.currency,
        "status": order.status,
        "statusHistory": order.status_history,
        "underReview": order.review_reason.is_some(),
        "credits": {
            "baseCredits": order.base_credits,
            "bonusCredits": order.bonus_credits,
            "totalCredits": order.total_credits,
        },
        "chainUsed": order.chain_used,
        "transactionHash": order.transaction_hash,
        "createdAt": order.created_at,
        "paidAt": order.paid_at,
        "completedAt": order.completed_at,
        "takenBack": {
            "refunded": order.refunded_credits,
            "chargedBack": order.charged_back_credits,
            "revoked": order.revoked_credits,
            "shortfall": order.taken_back_shortfall,
        },
    })
}
