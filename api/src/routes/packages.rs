//! `GET /api/payments/packages`: the catalogue. No token needed: it is what
//! the pricing page shows before anyone signs in.

use axum::routing::get;
use axum::{Json, Router};
use ledgerhook_domain::{CURRENCY, PACKAGES, Package};
use serde_json::{Value, json};

use crate::app::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/payments/packages", get(list))
}

async fn list() -> Json<Value> {
    Json(json!({ "packages": PACKAGES.iter().map(package_json).collect::<Vec<_>>() }))
}

pub fn package_json(package: &Package) -> Value {
    json!({
        "id": package.id,
        "name": package.name,
        "price": package.price.to_string(),
        "currency": CURRENCY,
        "credits": package.credits,
        "bonusCredits": package.bonus_credits,
        "totalCredits": package.total_credits(),
        "badge": package.badge,
        "chain": package.chain,
    })
}
