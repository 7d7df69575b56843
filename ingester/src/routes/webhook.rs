//! `POST /webhooks/crossmint`: verify, record (committed), answer. The
//! recorder hands new deliveries to the outbox publisher without waiting.

use std::time::SystemTime;

use axum::body::{Body, to_bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, header};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::app::AppState;
use crate::delivery::UnverifiedDelivery;
use crate::metrics;
use crate::recorder::Recorded;
use crate::rejection::Rejection;
use crate::store::Arrival;

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

#[tracing::instrument(skip_all, fields(delivery_id))]
async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Accepted>, Rejection> {
    let received_at: DateTime<Utc> = SystemTime::now().into();
    if declared_length(&headers).is_some_and(|len| len > state.max_body_bytes) {
        return Err(Rejection::PayloadTooLarge);
    }
    let body = to_bytes(body, state.max_body_bytes)
        .await
        .map_err(|_| Rejection::PayloadTooLarge)?;

    let delivery =
        UnverifiedDelivery { headers, body }.verify(&state.secrets, received_at.timestamp())?;
    tracing::Span::current().record("delivery_id", delivery.delivery_id.as_str());

    let arrival = Arrival {
        delivery,
        received_at,
    };
    let recorded = state
        .recorder
        .record(arrival)
        .await
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

fn declared_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}
