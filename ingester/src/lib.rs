//! The ledgerhook ingester: a thin HTTP front that verifies Crossmint (Svix)
//! and Stripe webhooks over their raw bytes, records each delivery in PostgreSQL, answers
//! at once, and publishes to RabbitMQ through an outbox.
//!
//! Layout: [`routes`] (HTTP), [`delivery`] (unverified → verified), [`body`]
//! (reading a body within bounds),
//! [`rejection`] (every refusal, mapped to HTTP), [`rejection_log`] (the
//! last refused requests kept for the console, bounded), [`recorder`] (group commit; the SQL is
//! `ledgerhook_store::deliveries`),
//! [`outbox`] (publisher and relay), [`app`] (wiring), [`config`] and
//! [`webhook_keys`] (each provider's keys), [`metrics`].

pub mod app;
pub mod body;
pub mod config;
pub mod delivery;
pub mod metrics;
pub mod outbox;
pub mod recorder;
pub mod rejection;
pub mod rejection_log;
pub mod routes;
pub mod webhook_keys;

pub use app::App;
pub use config::Config;
