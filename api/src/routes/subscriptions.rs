//! Subscriptions (Stripe only):
//! - `GET /api/payments/plans`: the plans, each a price per period and the
//!   credits each paid period grants. No token needed, like the packages.
//! - `POST /api/payments/subscriptions {planId}`: a Checkout Session in
//!   subscription mode, with the user and plan on the subscription's
//!   metadata, which Stripe copies onto every invoice: each paid invoice
//!   is then one period's order, granted by the worker. Answers `201
//!   {sessionId, checkoutUrl, planId, status: "pending"}`; the
//!   subscription exists once the buyer pays. `Idempotency-Key` as for
//!   orders (the same key for another plan or a package is `409
//!   DUPLICATE_ORDER`), and the same rate limits.
//! - `GET /api/payments/subscriptions`: the user's subscriptions (status,
//!   plan, current period, periods paid, credits granted).
//! - `POST /api/payments/subscriptions/portal`: `{url}` of Stripe's customer
//!   portal, where the user manages payment or cancels.
//! - `POST /api/payments/subscriptions/{id}/plan {planId}`: the plan from the
//!   next period on (no proration): the subscription's price and its
//!   metadata change together at Stripe, so the next invoice names and
//!   costs the new plan and grants its credits.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ledgerhook_domain::{PLANS, Plan, find_plan};
use ledgerhook_store::subscriptions;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::User;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::metrics;
use crate::order_keys::{self, Claim, IdempotencyKey, Reservation};
use crate::routes::orders::check_rates;

/// As for orders: a reservation taken over is looked at again this often.
const MAX_CLAIMS: usize = 3;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/payments/plans", get(plans))
        .route("/api/payments/subscriptions", post(create).get(list))
        .route("/api/payments/subscriptions/portal", post(portal))
        .route("/api/payments/subscriptions/{id}/plan", post(change_plan))
}

fn plan_json(plan: &Plan) -> Value {
    json!({
        "id": plan.id,
        "name": plan.period.name,
        "interval": plan.interval.as_str(),
        "price": plan.period.price.to_string(),
        "currency": "USD",
        "creditsPerPeriod": plan.period.total_credits(),
        "badge": plan.period.badge,
    })
}

async fn plans() -> Json<Value> {
    Json(json!({ "plans": PLANS.iter().map(plan_json).collect::<Vec<_>>() }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateSubscription {
    plan_id: String,
}

async fn create(
    State(state): State<AppState>,
    user: User,
    headers: HeaderMap,
    JsonBody(request): JsonBody<CreateSubscription>,
) -> Result<Response, ApiError> {
    let key = IdempotencyKey::from_headers(&headers)?;
    let plan = find_plan(&request.plan_id).ok_or_else(|| ApiError::InvalidPlan {
        plan_id: request.plan_id.chars().take(64).collect(),
    })?;
    if state.stripe.is_none() {
        metrics::provider_unavailable("stripe");
        return Err(ApiError::ProviderUnavailable { provider: "stripe" });
    }
    let Some(key) = key else {
        let body = start(&state, &user, plan, None)
            .await?
            .expect("without a reservation the session is always answered");
        return Ok((StatusCode::CREATED, Json(body)).into_response());
    };
    for _ in 0..MAX_CLAIMS {
        let claim =
            order_keys::claim(&state.pool, &user.id, &key, plan.id, state.order_key_lease).await?;
        match claim {
            Claim::Done(body) => {
                metrics::order_key_reused(metrics::KEY_REPLAYED);
                let mut response = (StatusCode::CREATED, Json(body)).into_response();
                response
                    .headers_mut()
                    .insert("idempotent-replayed", HeaderValue::from_static("true"));
                return Ok(response);
            }
            Claim::OtherPackage(first) => {
                metrics::order_key_reused(metrics::KEY_DUPLICATE_ORDER);
                return Err(ApiError::DuplicateOrder {
                    first_package_id: first,
                    first_provider: None,
                });
            }
            Claim::Reserved(reservation) => {
                match start(&state, &user, plan, Some(&reservation)).await {
                    Ok(Some(body)) => {
                        return Ok((StatusCode::CREATED, Json(body)).into_response());
                    }
                    Ok(None) => {}
                    Err(e) => {
                        order_keys::release(&state.pool, &reservation).await;
                        return Err(e);
                    }
                }
            }
        }
    }
    Err(ApiError::Internal(anyhow::anyhow!(
        "Idempotency-Key reservation lost {MAX_CLAIMS} times"
    )))
}

/// Creates the session and, with a reservation, binds the key to it; the
/// answer, or `None` when the reservation was taken over meanwhile.
async fn start(
    state: &AppState,
    user: &User,
    plan: &Plan,
    reservation: Option<&Reservation>,
) -> Result<Option<Value>, ApiError> {
    check_rates(state, &user.id).await?;
    let stripe = state
        .stripe
        .as_ref()
        .ok_or(ApiError::ProviderUnavailable { provider: "stripe" })?;
    let session = stripe
        .create_subscription_session(&user.id, plan, reservation)
        .await
        .map_err(|e| {
            metrics::stripe_failure(e.reason());
            ApiError::Stripe(e)
        })?;
    let body = json!({
        "status": "pending",
        "provider": "stripe",
        "sessionId": session.id,
        "checkoutUrl": session.url,
        "plan": plan_json(plan),
        "planId": plan.id,
    });
    if let Some(reservation) = reservation {
        let mut tx = state.pool.begin().await?;
        if !order_keys::bind(&mut tx, reservation, &session.id, &body).await? {
            return Ok(None);
        }
        tx.commit().await?;
    }
    Ok(Some(body))
}

async fn list(State(state): State<AppState>, user: User) -> Result<Json<Value>, ApiError> {
    let mine = subscriptions::of_user(&state.pool, &user.id).await?;
    Ok(Json(json!({
        "userId": user.id,
        "subscriptions": mine,
    })))
}

async fn portal(State(state): State<AppState>, user: User) -> Result<Json<Value>, ApiError> {
    let stripe = state
        .stripe
        .as_ref()
        .ok_or(ApiError::ProviderUnavailable { provider: "stripe" })?;
    let mine = subscriptions::of_user(&state.pool, &user.id).await?;
    let customer = mine
        .iter()
        .find_map(|s| s.customer_id.clone())
        .ok_or(ApiError::SubscriptionNotFound)?;
    let url = stripe.portal(&customer).await.map_err(|e| {
        metrics::stripe_failure(e.reason());
        ApiError::Stripe(e)
    })?;
    Ok(Json(json!({ "url": url })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChangePlan {
    plan_id: String,
}

async fn change_plan(
    State(state): State<AppState>,
    user: User,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<ChangePlan>,
) -> Result<Json<Value>, ApiError> {
    let plan = find_plan(&request.plan_id).ok_or_else(|| ApiError::InvalidPlan {
        plan_id: request.plan_id.chars().take(64).collect(),
    })?;
    let stripe = state
        .stripe
        .as_ref()
        .ok_or(ApiError::ProviderUnavailable { provider: "stripe" })?;
    // Another user's subscription is indistinguishable from none.
    let mine = subscriptions::of_user(&state.pool, &user.id).await?;
    let subscription = mine
        .iter()
        .find(|s| s.id == id && !matches!(s.status.as_str(), "canceled" | "incomplete_expired"))
        .ok_or(ApiError::SubscriptionNotFound)?;
    let (Some(item), Some(product)) = (&subscription.item_id, &subscription.product_id) else {
        return Err(ApiError::SubscriptionNotFound);
    };
    if subscription.plan_id != plan.id {
        stripe
            .change_plan(&subscription.id, item, product, plan)
            .await
            .map_err(|e| {
                metrics::stripe_failure(e.reason());
                ApiError::Stripe(e)
            })?;
    }
    Ok(Json(json!({
        "subscriptionId": subscription.id,
        "planId": plan.id,
        "takesEffectAt": subscription.current_period_end,
    })))
}
