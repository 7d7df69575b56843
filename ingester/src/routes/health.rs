//! Liveness and readiness for orchestrators and load balancers.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use ledgerhook_store::db;
use serde_json::{Value, json};

use crate::app::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(ready))
}

/// How long the database may take to answer a readiness probe.
const DATABASE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Ready means "can record a delivery": the database answers, and the
/// broker is not refusing this ingester's publishes (a nack not yet
/// followed by a confirm: on a cluster that lost a node, one ingester's
/// channel can refuse while the others' work, and the balancer should send
/// traffic to those). A broker that is merely away is not required: the
/// outbox holds what is recorded, and pulling every ingester out of service
/// then would refuse deliveries the outbox exists to absorb. Its state is
/// in the body (and in `ledgerhook_broker_connected`), so an operator sees
/// it.
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let database = tokio::time::timeout(DATABASE_CHECK_TIMEOUT, db::answers(&state.pool))
        .await
        .unwrap_or(false);
    let refusing = state.broker_refusing.load(Ordering::Relaxed);
    let broker = state.broker_connected.load(Ordering::Relaxed) && !refusing;
    let status = if database && !refusing {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"database": database, "broker": broker, "refusing": refusing})),
    )
}
