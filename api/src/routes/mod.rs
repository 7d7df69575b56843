//! HTTP routes, one module per feature, merged here.

mod confirm;
mod credits;
mod health;
mod history;
mod openapi;
mod orders;
pub mod packages;

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::error::ApiError;

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(packages::router())
        .merge(orders::router())
        .merge(confirm::router())
        .merge(history::router())
        .merge(credits::router())
        .merge(openapi::router())
        .merge(health::router())
        .fallback(|| async { ApiError::NotFound.into_response() })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed.into_response() })
        .layer(middleware::from_fn(record_latency))
        .with_state(state)
}

async fn record_latency(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    crate::metrics::http_request(route, response.status().as_u16(), started.elapsed());
    response
}
