//! The ledgerhook worker: consumes verified deliveries from RabbitMQ and
//! applies each to the ledger in one PostgreSQL transaction, idempotently.
//! Any number of workers may consume one queue.
//!
//! Layout: [`consumer`] (the broker session: prefetch, batching,
//! reconnection), [`processor`] (messages: parse once, apply in batches,
//! fall back to one by one; a verdict per message), [`settler`] (the
//! [`settler::Settler`]: acks, retries on a schedule kept in RabbitMQ wait
//! queues, parking), [`app`] (wiring),
//! [`config`], [`metrics`], and the scheduled jobs: [`expiry_job`] (credit
//! expiry), [`payment_timeout_job`] (orders left unpaid expire),
//! [`reconcile`] (asking Crossmint about orders whose payment never
//! arrived), [`retention`] (dropping old bodies and personal fields,
//! making and dropping the deliveries' monthly partitions). The transaction itself is `ledgerhook_store::ledger`.
//! [`pause`] is the switch every worker watches (the operator's command,
//! `ledgerhook-admin`, is its own crate: `admin/`).

pub mod app;
pub mod config;
pub mod consumer;
pub mod expiry_job;
pub mod metrics;
pub mod notify_channels;
pub mod pause;
pub mod payment_lookup;
pub mod payment_timeout_job;
pub mod processor;
pub mod reconcile;
pub mod retention;
pub mod settler;

pub use app::App;
pub use config::Config;
