//! `POST /webhooks/crossmint`: verify, record, answer, hand off.

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
use crate::outbox::OutboxItem;
use crate::rejection::Rejection;
use crate::store::{self, Recorded};

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

    let recorded = store::record(&state.pool, &delivery, received_at)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "could not record a delivery; answering 503 so the sender retries");
            Rejection::StorageUnavailable
        })?;
    let Recorded::New { row } = recorded else {
        metrics::delivery_outcome("duplicate");
        return Ok(Json(Accepted {
            status: "duplicate",
        }));
    };

    // Never wait on the broker here: if the publisher is behind or away, the
    // row stays unpublished and the relay sends it later.
    let item = OutboxItem {
        row,
        delivery_id: delivery.delivery_id,
        body: delivery.body,
        received_at_us: received_at.timestamp_micros(),
    };
    if state.outbox.try_send(item).is_err() {
        tracing::debug!(
            row,
            "publisher queue full; leaving the delivery to the relay"
        );
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
