//! `POST /webhooks/crossmint` and `POST /webhooks/stripe`: verify (each
//! with its provider's scheme), record (committed), answer. The recorder
//! hands new deliveries to the outbox publisher without waiting.
//! Recording has a deadline: a sender that waited too long would count a
//! timeout as a failure anyway, and a 503 with Retry-After says more.

use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use ledgerhook_domain::Provider;
use serde::Serialize;

use crate::app::AppState;
use crate::delivery::{Refused, UnverifiedDelivery, VerifiedDelivery};
use crate::metrics;
use crate::recorder::{Arrival, Recorded};
use crate::rejection::{Refusal, Rejection};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks/crossmint", post(crossmint))
        .route("/webhooks/stripe", post(stripe))
        // The limit is enforced below, so that an oversized body gets our
        // JSON error and metric rather than axum's plain-text one.
        .layer(DefaultBodyLimit::disable())
}

#[derive(Serialize)]
struct Accepted {
    status: &'static str,
}

/// Runs in the request's span (`ledgerhook_runtime::http::layers`), which
/// gets the delivery id once the signature vouches for it; the recorder's
/// tasks inherit that span.
async fn crossmint(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Accepted>, Refusal> {
    let received_at: DateTime<Utc> = SystemTime::now().into();
    let delivery = UnverifiedDelivery { headers, body };
    let verified = match &state.keys.crossmint {
        Some(keys) => {
            delivery
                .verify_crossmint(keys, state.max_body_bytes, received_at.timestamp())
                .await
        }
        None => Err(Refused {
            rejection: Rejection::ProviderNotConfigured,
            headers: delivery.headers,
        }),
    };
    record(Provider::Crossmint, &state, verified, received_at).await
}

/// As [`crossmint`], with Stripe's scheme.
async fn stripe(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Accepted>, Refusal> {
    let received_at: DateTime<Utc> = SystemTime::now().into();
    let delivery = UnverifiedDelivery { headers, body };
    let verified = match &state.keys.stripe {
        Some(secrets) => {
            delivery
                .verify_stripe(secrets, state.max_body_bytes, received_at.timestamp())
                .await
        }
        None => Err(Refused {
            rejection: Rejection::ProviderNotConfigured,
            headers: delivery.headers,
        }),
    };
    record(Provider::Stripe, &state, verified, received_at).await
}

/// Records a verified delivery and answers; every outcome is counted under
/// the route's `provider`.
async fn record(
    provider: Provider,
    state: &AppState,
    verified: Result<VerifiedDelivery, Refused>,
    received_at: DateTime<Utc>,
) -> Result<Json<Accepted>, Refusal> {
    let refuse = |rejection| Refusal {
        provider,
        rejection,
    };
    let delivery = verified.map_err(|refused| {
        state
            .rejections
            .note(provider, refused.rejection, &refused.headers);
        refuse(refused.rejection)
    })?;
    tracing::Span::current().record("delivery_id", delivery.delivery_id());

    let arrival = Arrival {
        delivery,
        received_at,
    };
    let recorded = tokio::time::timeout(state.record_timeout, state.recorder.record(arrival))
        .await
        .map_err(|_| {
            tracing::warn!(
                timeout_ms = state.record_timeout.as_millis() as u64,
                "recording took too long; answered 503 (if it commits later, the retry is a duplicate)"
            );
            refuse(Rejection::StorageUnavailable)
        })?
        .map_err(|_| refuse(Rejection::StorageUnavailable))?;
    let status = match recorded {
        Recorded::Duplicate => metrics::DUPLICATE,
        Recorded::New { .. } => metrics::ACCEPTED,
    };
    metrics::delivery_outcome(provider, status);
    Ok(Json(Accepted { status }))
}
