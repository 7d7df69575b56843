//! What every request to the ingester and the API goes through, outermost
//! first:
//!
//! 1. the client's `x-request-id` is screened: kept only if it is one value
//!    of 1 to [`MAX_CLIENT_REQUEST_ID`] characters from `A-Z a-z 0-9 - _ .`,
//!    otherwise dropped (and not logged: it is whatever a stranger sent);
//! 2. [`SetRequestIdLayer`]: a request without a (kept) id gets a UUID v7;
//! 3. [`TraceLayer`]: the request's span, `http_request`, with fields
//!    `method`, `route` (the matched route, `unmatched` otherwise),
//!    `request_id` and `delivery_id` (empty until a handler records it: the
//!    ingester's webhook route does, once the signature is verified). Every
//!    line logged while the request is handled, and by the tasks that
//!    inherit its span, carries these. One line per request at INFO,
//!    `request answered`, with `status` and `latency_ms`, under its own
//!    target [`ACCESS_TARGET`];
//! 4. [`PropagateRequestIdLayer`]: the response carries the same
//!    `x-request-id`;
//! 5. the latency histogram, [`super::REQUEST_DURATION`], labelled with the
//!    app's `service`, the `route` and the `status`.
//!
//! Why a well-formed client id is kept: a proxy or load balancer in front
//! (or the frontend) can then tie its own logs to ours. On the public
//! ingester the header is the sender's to choose, so the bounds keep it to
//! a short token that cannot forge log lines or bloat them; a client can
//! still reuse an id, so a request id is a correlation aid, never a key:
//! `delivery_id` (verified) is what identifies a delivery.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
use metrics::Histogram;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use tracing::Span;

/// The request id's header, on requests and responses.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");
/// The longest client-sent request id kept (a UUID is 36).
pub const MAX_CLIENT_REQUEST_ID: usize = 64;
/// The name of every request's span.
pub const REQUEST_SPAN: &str = "http_request";
/// The target of the per-request line, so that it can be filtered on its
/// own (`RUST_LOG=info,ledgerhook::access=warn`) without losing the span.
pub const ACCESS_TARGET: &str = "ledgerhook::access";

/// `router` with the layers above; `service` labels its latency. Call it
/// after every route and fallback is added, so that all of them are covered.
pub fn with_http_layers<S>(router: Router<S>, service: &'static str) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    // `Router::layer` wraps what is already there: the last one added is
    // the outermost.
    let latency = Latency {
        service,
        histograms: Arc::default(),
    };
    router
        .layer(middleware::from_fn_with_state(latency, record_latency))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID_HEADER))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(log_response)
                // The response line carries the status; a 5xx's cause is
                // logged where it happens.
                .on_failure(())
                .on_body_chunk(())
                .on_eos(()),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID_HEADER, MakeRequestUuidV7))
        .layer(middleware::map_request(screen_client_request_id))
}

/// The `http_request` span (see the module docs).
fn request_span(request: &Request) -> Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        REQUEST_SPAN,
        method = %request.method(),
        route,
        request_id,
        delivery_id = tracing::field::Empty,
    )
}

fn log_response(response: &Response<Body>, latency: Duration, _span: &Span) {
    tracing::info!(
        target: ACCESS_TARGET,
        status = response.status().as_u16(),
        latency_ms = latency.as_secs_f64() * 1000.0,
        "request answered"
    );
}

/// The latency histogram's handles, one per (status, route) seen, each
/// looked up in the registry once: a lookup by labels (and the strings it
/// needs) on every request was a measurable share of the hot path. Routes
/// are the app's own (or `unmatched`) and statuses few, so it stays small.
#[derive(Clone)]
struct Latency {
    service: &'static str,
    histograms: Arc<RwLock<HashMap<u16, HashMap<String, Histogram>>>>,
}

impl Latency {
    fn histogram(&self, status: u16, route: &str) -> Histogram {
        let known = self
            .histograms
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&status)
            .and_then(|routes| routes.get(route))
            .cloned();
        known.unwrap_or_else(|| {
            let histogram = metrics::histogram!(
                super::REQUEST_DURATION,
                "service" => self.service,
                "route" => route.to_owned(),
                "status" => status.to_string()
            );
            self.histograms
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(status)
                .or_default()
                .insert(route.to_owned(), histogram.clone());
            histogram
        })
    }
}

async fn record_latency(State(latency): State<Latency>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    latency
        .histogram(response.status().as_u16(), route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Drops a client's `x-request-id` unless it is exactly one acceptable value.
async fn screen_client_request_id(mut request: Request) -> Request {
    let headers = request.headers_mut();
    let mut sent = headers.get_all(&REQUEST_ID_HEADER).iter();
    let keep = match (sent.next(), sent.next()) {
        (None, _) => return request,
        (Some(id), None) => acceptable_request_id(id.as_bytes()),
        (Some(_), Some(_)) => false,
    };
    if !keep {
        headers.remove(&REQUEST_ID_HEADER);
    }
    request
}

/// 1 to [`MAX_CLIENT_REQUEST_ID`] characters from `A-Z a-z 0-9 - _ .`.
fn acceptable_request_id(id: &[u8]) -> bool {
    (1..=MAX_CLIENT_REQUEST_ID).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Request ids of our own: UUID v7, so they sort by time.
#[derive(Debug, Clone, Copy)]
struct MakeRequestUuidV7;

impl MakeRequestId for MakeRequestUuidV7 {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        let id = uuid::Uuid::now_v7().hyphenated().to_string();
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_short_ids_are_kept_and_anything_else_is_not() {
        for good in [
            "0190b3c2-7a4e-7cc0-9d3e-2f1a5b6c7d8e",
            "a",
            "req_123.abc-DEF",
            &"x".repeat(MAX_CLIENT_REQUEST_ID),
        ] {
            assert!(acceptable_request_id(good.as_bytes()), "{good:?}");
        }
        for bad in [
            "",
            &"x".repeat(MAX_CLIENT_REQUEST_ID + 1),
            "has space",
            "new\nline",
            "quote\"",
            "{\"json\":1}",
            "semi;colon",
            "é",
        ] {
            assert!(!acceptable_request_id(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn our_ids_are_uuid_v7_and_acceptable() {
        let request = axum::http::Request::new(());
        let id = MakeRequestUuidV7.make_request_id(&request).unwrap();
        let text = id.header_value().to_str().unwrap();
        assert_eq!(
            uuid::Uuid::parse_str(text).unwrap().get_version_num(),
            7,
            "{text}"
        );
        assert!(acceptable_request_id(text.as_bytes()));
    }
}
