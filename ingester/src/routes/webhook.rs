//! `POST /webhooks/crossmint`: verify, record (committed), answer. The
//! recorder hands new deliveries to the outbox publisher without waiting.
//! Recording has a deadline: a sender that waited too long would count a
//! timeout as a failure anyway, and a 503 with Retry-After says more.

use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::app::AppState;
use crate::delivery::UnverifiedDelivery;
use crate::metrics;
use crate::recorder::{Arrival, Recorded};
use crate::rejection::Rejection;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks/crossmint", post(receive))
        // The limit is enforced below, so that an oversized body gets our
        // JSON error and metric rather than axum's plain-text one.
        .layer(DefaultBodyLimit::disable())
}

#[derive(Serialize)]
struct Accepted {
    status: &'static str,
}

/// Runs in the request's span (`ledgerhook_shared::http::layers`), which
/// gets the delivery id once the signature vouches for it; the recorder's
/// tasks inherit that span.
async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Accepted>, Rejection> {
    let received_at: DateTime<Utc> = SystemTime::now().into();
    let delivery = UnverifiedDelivery { headers, body }
        .verify(&state.keys, state.max_body_bytes, received_at.timestamp())
        .await?;
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
            Rejection::StorageUnavailable
        })?
        .map_err(|_| Rejection::StorageUnavailable)?;
    if recorded == Recorded::Duplicate {
        metrics::delivery_outcome("duplicate");
        return Ok(Json(Accepted {
            status: "duplicate",
        }));
    }
    metrics::delivery_outcome("accepted");
    Ok(Json(Accepted { status: "accepted" }))
}
