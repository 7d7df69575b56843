//! The ledgerhook worker: consumes verified deliveries from RabbitMQ and
//! applies each to the ledger in one PostgreSQL transaction, idempotently.
//! Any number of workers may consume one queue.
//!
//! Layout: [`consumer`] (AMQP: prefetch, acks, parking, reconnection),
//! [`processor`] (one message: parse, apply, retry), [`app`] (wiring),
//! [`config`], [`metrics`]. The transaction itself is
//! `ledgerhook_shared::ledger`.

pub mod app;
pub mod config;
pub mod consumer;
pub mod metrics;
pub mod processor;

pub use app::App;
pub use config::Config;
