//! Code shared by the ledgerhook ingester, worker and API.
//!
//! Layout:
//! - [`domain`]: money, packages, order events and the order state machine (no I/O);
//! - [`svix`]: the webhook signature scheme, verifying and signing;
//! - [`config`]: environment parsing that names every problem at once;
//! - [`ledger`]: applying order events, exactly once; [`credits`]: spending and expiry;
//! - [`db`] and [`amqp`]: PostgreSQL and RabbitMQ set-up and contracts;
//! - [`telemetry`], [`shutdown`]: logs, metrics and signals for the binaries.

pub mod amqp;
pub mod config;
pub mod credits;
pub mod db;
pub mod domain;
pub mod ledger;
pub mod shutdown;
pub mod svix;
pub mod telemetry;
