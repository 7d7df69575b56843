//! The ledgerhook worker: consumes verified deliveries from RabbitMQ and
//! applies each to the ledger in one PostgreSQL transaction, idempotently.
//! Any number of workers may consume one queue.
//!
//! Layout: [`consumer`] (AMQP: prefetch, acks, parking, reconnection),
//! [`processor`] (messages: parse, apply), [`retry`] (the schedule kept in
//! RabbitMQ wait queues), [`app`] (wiring),
//! [`config`], [`metrics`], [`expiry_job`] (scheduled credit expiry). The transaction itself is
//! `ledgerhook_shared::ledger`. [`admin`] backs the `ledgerhook-admin`
//! operator command (parked deliveries, redrive, replay).

pub mod admin;
pub mod app;
pub mod config;
pub mod consumer;
pub mod expiry_job;
pub mod metrics;
pub mod processor;
pub mod retry;

pub use app::App;
pub use config::Config;
