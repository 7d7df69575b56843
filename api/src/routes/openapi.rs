//! `GET /api/openapi.json`: the API's contract, kept beside the code
//! (`api/openapi.json`) and checked against the running API by schemathesis
//! in the test command.

use axum::Router;
use axum::http::header;
use axum::routing::get;

use crate::app::AppState;

const DOCUMENT: &str = include_str!("../../openapi.json");

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/openapi.json",
        get(|| async { ([(header::CONTENT_TYPE, "application/json")], DOCUMENT) }),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_is_json_and_names_every_route() {
        let document: serde_json::Value = serde_json::from_str(super::DOCUMENT).unwrap();
        let paths = document["paths"].as_object().unwrap();
        for route in [
            "/api/payments/packages",
            "/api/payments/orders",
            "/api/payments/confirm",
            "/api/payments/history",
            "/api/v1/user/credits",
            "/api/v1/user/credits/consume",
        ] {
            assert!(paths.contains_key(route), "{route} is documented");
        }
    }
}
