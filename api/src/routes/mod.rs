//! HTTP routes, one module per feature, merged here; the layers every
//! request goes through (request id, span, latency) are the shared ones.

mod confirm;
mod credits;
mod health;
mod history;
mod openapi;
mod orders;
pub mod packages;
mod subscriptions;

use axum::Router;
use axum::response::IntoResponse;
use ledgerhook_runtime::http;

use crate::app::AppState;
use crate::error::ApiError;

pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .merge(packages::router())
        .merge(orders::router())
        .merge(subscriptions::router())
        .merge(confirm::router())
        .merge(history::router())
        .merge(credits::router())
        .merge(openapi::router())
        .merge(health::router())
        .fallback(|| async { ApiError::NotFound.into_response() })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed.into_response() });
    http::with_http_layers(routes, "api").with_state(state)
}
