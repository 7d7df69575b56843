//! The console's sections, one module each, merged here. Every route in
//! this router is behind a session; those that change something are POSTs
//! behind the CSRF guard, and those that act check the role in their
//! handler ([`crate::auth::Signed::may_act`]).

mod audit;
mod control;
mod deliveries;
mod delivery;
mod held;
mod jobs;
pub mod layout;
mod orders;
mod overview;
mod parked;
mod provider_view;
mod rejected;
mod search;
mod users;

use axum::Router;
use axum::routing::{get, post};

use crate::app::AppState;

/// How old a running replay job's heartbeat may be before its console is
/// taken to have stopped.
pub use jobs::STALE_SECS as JOB_STALE_SECS;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(overview::page))
        .route("/search", get(search::find))
        .route("/deliveries", get(deliveries::list))
        .route("/deliveries/{row}", get(delivery::page))
        .route("/deliveries/{row}/reveal", post(delivery::reveal))
        .route("/deliveries/{row}/redrive", post(delivery::redrive))
        .route("/orders", get(orders::page))
        .route("/orders/revoke", post(orders::revoke))
        .route("/held", get(held::list))
        .route("/held/resolve", post(held::resolve))
        .route("/held/provider", get(provider_view::page))
        .route("/users", get(users::page))
        .route("/users/grant", post(users::grant))
        .route("/parked", get(parked::list))
        .route("/rejected", get(rejected::list))
        .route("/jobs", post(jobs::start))
        .route("/jobs/{id}", get(jobs::page))
        .route("/jobs/{id}/cancel", post(jobs::cancel))
        .route("/control", get(control::page).post(control::switch))
        .route("/audit", get(audit::list))
}
