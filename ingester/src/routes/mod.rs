//! HTTP routes, one module per feature, merged here; the layers every
//! request goes through (request id, span, latency) are the shared ones.

mod health;
mod webhook;

use axum::Router;
use ledgerhook_runtime::http;

use crate::app::AppState;

pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .merge(webhook::router())
        .merge(health::router());
    http::with_http_layers(routes, "ingester").with_state(state)
}
