//! `ledgerhook-console`: the operator console in the browser. Find any
//! payment, see why it went as it did, act on it, all audited.
//!
//! Layout: [`config`]; [`app`] (state, routes, serving); [`auth`] (sessions,
//! CSRF, sign-in, a trusted proxy); [`pages`] (one module per section,
//! rendered on the server with maud); [`mask`] (buyers' personal data
//! hidden until revealed); [`security`] (CSP and other headers);
//! [`assets`] (htmx and the style sheet, compiled in); [`refusal`] (every
//! refusal: status, code, message, metric); [`metrics`].
//!
//! The console reads through the store's functions and acts through
//! ledgerhook-admin's: the same code, the same audit rows, as the command
//! line. It runs no SQL of its own (the root clippy.toml refuses it).

pub mod app;
pub mod assets;
pub mod auth;
pub mod config;
pub mod mask;
pub mod metrics;
pub mod pages;
pub mod refusal;
pub mod security;

pub use app::{App, AppState, router};
pub use config::Config;
