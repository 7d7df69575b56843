//! The console's static files, compiled in: htmx (vendored, see
//! `static/README.md`) and the style sheet. Served with a long cache life:
//! their paths carry a version.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

pub const HTMX_PATH: &str = "/static/htmx-2.0.11.min.js";
pub const CSS_PATH: &str = "/static/console-1.css";

const HTMX: &[u8] = include_bytes!("../static/htmx-2.0.11.min.js");
const CSS: &[u8] = include_bytes!("../static/console.css");

const LONG_CACHE: &str = "public, max-age=31536000, immutable";

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            HTMX_PATH,
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                        (header::CACHE_CONTROL, LONG_CACHE),
                    ],
                    HTMX,
                )
                    .into_response()
            }),
        )
        .route(
            CSS_PATH,
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/css; charset=utf-8"),
                        (header::CACHE_CONTROL, LONG_CACHE),
                    ],
                    CSS,
                )
                    .into_response()
            }),
        )
}
