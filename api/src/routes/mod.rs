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

pub fn router(state: AppState, cors_origins: &[axum::http::HeaderValue]) -> Router {
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
    let routes = http::with_http_layers(routes, "api");
    // Outermost: a preflight is answered here, before any route.
    let routes = match crate::cors::layer(cors_origins) {
        Some(cors) => routes.layer(cors),
        None => routes,
    };
    routes.with_state(state)
}
