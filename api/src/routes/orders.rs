//! `POST /api/payments/orders`: creates the order with its provider, then
//! records it pending (user, package snapshot, expected price) before the
//! frontend ever sees how to pay it, so the buyer cannot pay for an order
//! we do not know.
//!
//! `provider` is `crossmint` (the default: a Headless Checkout order paid
//! in USDT, answered with its `clientSecret`) or `stripe` (a hosted
//! Checkout Session paid by card in USD: the `cs_...` id is the order id,
//! answered with the `checkoutUrl` to send the buyer to). A provider this
//! deployment has no key for (`CROSSMINT_SERVER_API_KEY`,
//! `STRIPE_SECRET_KEY`) is `422 PROVIDER_UNAVAILABLE`: well-formed, but not
//! something this deployment does, now or on a retry (a 503 would invite
//! retries and count as an outage). Anything else is `400 INVALID_PROVIDER`.
//!
//! With an `Idempotency-Key` header (see [`crate::order_keys`]) a retry
//! gets the first answer again, `201` with the same body and
//! `Idempotent-Replayed: true`: the same status because a client that lost
//! the first answer must be able to treat the retry's exactly as it would
//! have treated the first (as the IETF idempotency-key draft and Stripe do);
//! the header tells the two apart for whoever cares. The same key with
//! another package, or with the same package through another provider, is
//! `409 DUPLICATE_ORDER`.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use ledgerhook_domain::{Package, PaymentProvider, find_package};
use ledgerhook_store::ledger::orders::{self, CreatedFrom, PendingOrder};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::User;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::metrics;
use crate::order_keys::{self, Claim, IdempotencyKey, Reservation};
use crate::routes::packages::package_json;

/// Header set on an answer replayed for a repeated `Idempotency-Key`.
const REPLAYED: &str = "idempotent-replayed";
/// A request whose reservation was taken over (it outlived its lease) looks
/// again this many times before giving up.
const MAX_CLAIMS: usize = 3;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/payments/orders", post(create))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateOrder {
    package_id: String,
    /// The buyer's wallet, when the frontend knows it already.
    payer_address: Option<String>,
    /// `crossmint` (default) or `stripe`.
    provider: Option<String>,
}

async fn create(
    State(state): State<AppState>,
    user: User,
    headers: HeaderMap,
    JsonBody(request): JsonBody<CreateOrder>,
) -> Result<Response, ApiError> {
    let key = IdempotencyKey::from_headers(&headers)?;
    let provider = match request.provider.as_deref() {
        None => PaymentProvider::Crossmint,
        Some(text) => PaymentProvider::parse(text).ok_or_else(|| ApiError::InvalidProvider {
            provider: text.chars().take(64).collect(),
        })?,
    };
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
    let configured = match provider {
        PaymentProvider::Crossmint => state.crossmint.is_some(),
        PaymentProvider::Stripe => state.stripe.is_some(),
    };
    if !configured {
        metrics::provider_unavailable(provider.as_str());
        return Err(ApiError::ProviderUnavailable {
            provider: provider.as_str(),
        });
    }
    let attempt = Attempt {
        user: &user,
        package,
        provider,
        payer_address: request.payer_address.as_deref(),
    };
    let Some(key) = key else {
        let body = create_and_record(&state, attempt, None)
            .await?
            .expect("without a reservation the order is always recorded");
        return Ok((StatusCode::CREATED, Json(body)).into_response());
    };
    for _ in 0..MAX_CLAIMS {
        let claim = order_keys::claim(
            &state.pool,
            &user.id,
            &key,
            package.id,
            state.order_key_lease,
        )
        .await?;
        match claim {
            Claim::Done(mut body) => {
                // An answer stored before providers existed is Crossmint's,
                // and is replayed saying so (the contract requires it).
                if body.get("provider").is_none() {
                    body["provider"] = json!("crossmint");
                }
                let first_provider = body["provider"].as_str().unwrap_or("crossmint");
                if first_provider != provider.as_str() {
                    metrics::order_key_reused(metrics::KEY_DUPLICATE_ORDER);
                    return Err(ApiError::DuplicateOrder {
                        first_package_id: package.id.to_owned(),
                        first_provider: Some(first_provider.to_owned()),
                    });
                }
                metrics::order_key_reused(metrics::KEY_REPLAYED);
                let mut response = (StatusCode::CREATED, Json(body)).into_response();
                response
                    .headers_mut()
                    .insert(REPLAYED, HeaderValue::from_static("true"));
                return Ok(response);
            }
            Claim::OtherPackage(first_package) => {
                metrics::order_key_reused(metrics::KEY_DUPLICATE_ORDER);
                return Err(ApiError::DuplicateOrder {
                    first_package_id: first_package,
                    first_provider: None,
                });
            }
            Claim::Reserved(reservation) => {
                let result = create_and_record(&state, attempt, Some(&reservation)).await;
                match result {
                    Ok(Some(body)) => return Ok((StatusCode::CREATED, Json(body)).into_response()),
                    // Taken over while we worked: the key's order is the
                    // other request's; look again to answer with it.
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

/// One request's order: who buys what, through whom.
#[derive(Clone, Copy)]
struct Attempt<'a> {
    user: &'a User,
    package: &'static Package,
    provider: PaymentProvider,
    payer_address: Option<&'a str>,
}

/// Refuses a new order (before the provider is asked) when the user holds
/// too many open ones or created too many lately, or everyone together
/// did; a replayed `Idempotency-Key` never gets here, as it costs nothing.
/// The open-order count is read before the order is recorded, so requests
/// racing each other may pass it together; the per-user rate bounds that.
async fn check_limits(state: &AppState, user_id: &str) -> Result<(), ApiError> {
    let limits = state.order_limits;
    let (open, oldest) = orders::open_pending(&state.pool, user_id, limits.payment_timeout).await?;
    if open >= i64::from(limits.max_pending_per_user) {
        metrics::rate_limited(metrics::PENDING_ORDERS);
        // The oldest open order stops counting when it expires.
        let expires = oldest.map(|created| {
            created + chrono::Duration::from_std(limits.payment_timeout).unwrap_or_default()
        });
        let wait = expires.map_or(1, |at| (at - chrono::Utc::now()).num_seconds().max(1));
        return Err(ApiError::TooManyPendingOrders {
            open,
            retry_after_secs: wait.unsigned_abs(),
        });
    }
    check_rates(state, user_id).await
}

/// Refuses a new order or subscription when the user created too many
/// lately, or everyone together did (each is a call to the provider).
pub(crate) async fn check_rates(state: &AppState, user_id: &str) -> Result<(), ApiError> {
    for (limit, key) in [
        (&state.order_limit, user_id),
        (&state.global_order_limit, GLOBAL_KEY),
    ] {
        if let Err(wait) = limit.check(&state.pool, key).await? {
            metrics::rate_limited(limit.action);
            return Err(ApiError::RateLimited {
                retry_after_secs: wait,
            });
        }
    }
    Ok(())
}

/// The rate-limit key counting every user's orders together (the action
/// differs from a user's own, so no user id can share its row).
const GLOBAL_KEY: &str = "*";

/// Creates the order with its provider and records it; the answer's body,
/// or `None` when `reservation` was taken over meanwhile (nothing recorded).
async fn create_and_record(
    state: &AppState,
    attempt: Attempt<'_>,
    reservation: Option<&Reservation>,
) -> Result<Option<Value>, ApiError> {
    check_limits(state, &attempt.user.id).await?;
    let package = attempt.package;
    let valid_days = state.credit_terms.valid_days(package.id);
    let mut body = json!({
        "status": "pending",
        "provider": attempt.provider.as_str(),
        "package": package_json(package),
        "amount": package.price.to_string(),
        "currency": attempt.provider.currency(),
        "credits": package.total_credits(),
        "creditsValidDays": valid_days,
    });
    let provider_order_id = match attempt.provider {
        PaymentProvider::Crossmint => {
            let crossmint = state
                .crossmint
                .as_ref()
                .ok_or(ApiError::ProviderUnavailable {
                    provider: attempt.provider.as_str(),
                })?;
            let created = crossmint
                .create_order(package, attempt.payer_address)
                .await
                .map_err(|e| {
                    metrics::crossmint_failure(e.reason());
                    ApiError::Crossmint(e)
                })?;
            body["clientSecret"] = json!(created.client_secret.expose());
            created.order_id
        }
        PaymentProvider::Stripe => {
            let stripe = state.stripe.as_ref().ok_or(ApiError::ProviderUnavailable {
                provider: attempt.provider.as_str(),
            })?;
            let session = stripe
                .create_session(&attempt.user.id, package, reservation)
                .await
                .map_err(|e| {
                    metrics::stripe_failure(e.reason());
                    ApiError::Stripe(e)
                })?;
            body["checkoutUrl"] = json!(session.url);
            session.id
        }
    };
    body["orderId"] = json!(provider_order_id);
    let order = PendingOrder {
        provider: attempt.provider,
        provider_order_id: &provider_order_id,
        user_id: &attempt.user.id,
        package,
        credits_valid_days: valid_days,
        subscription_id: None,
    };
    if !record_pending(state, order, reservation, &body).await? {
        return Ok(None);
    }
    metrics::order_created(attempt.provider.as_str());
    Ok(Some(body))
}

/// Records the order pending and, with a reservation, binds the key to it,
/// in one transaction. False (and nothing recorded) when the reservation
/// was taken over.
async fn record_pending(
    state: &AppState,
    order: PendingOrder<'_>,
    reservation: Option<&Reservation>,
    body: &Value,
) -> Result<bool, ApiError> {
    let mut tx = state.pool.begin().await?;
    let inserted = orders::insert_pending(&mut *tx, CreatedFrom::Api, &[order]).await?;
    if inserted.is_empty() {
        // Already there: its webhook beat us and the worker built it from
        // metadata. Fine if it is this user's; anything else is not ours to fix.
        let owner = orders::owner(&mut *tx, order.provider_order_id).await?;
        if owner.as_deref() != Some(order.user_id) {
            return Err(ApiError::Internal(anyhow::anyhow!(
                "{} order {} is already recorded for another user",
                order.provider.as_str(),
                order.provider_order_id
            )));
        }
    }
    if let Some(reservation) = reservation
        && !order_keys::bind(&mut tx, reservation, order.provider_order_id, body).await?
    {
        return Ok(false);
    }
    tx.commit().await?;
    Ok(true)
}
