//! The frontend's API (`ledgerhook-api`): packages, orders created with
//! Crossmint or Stripe Checkout, confirmation, history, balance and spending. It never grants
//! credits for a payment: only the webhook path (ingester, worker) does.
//!
//! Layout: [`routes`] (one module per feature), [`auth`] (HS256 bearer
//! tokens), [`crossmint`] and [`stripe`] (creating orders), [`rate_limit`] (per-user
//! sliding windows in PostgreSQL), [`order_keys`] (the `Idempotency-Key`
//! of order creation), [`error`] (`{error, code, details?}`),
//! [`extract`], [`app`] (wiring), [`config`], [`metrics`]. Spending and
//! expiry live in `ledgerhook_store::credits`, shared with the worker.

pub mod app;
pub mod auth;
pub mod config;
pub mod cors;
pub mod crossmint;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod order_keys;
pub mod rate_limit;
pub mod routes;
pub mod stripe;

pub use app::App;
pub use config::Config;
