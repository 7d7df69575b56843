//! A fresh world per test: its own database, its own queue prefix, the real
//! ingester, worker and API binaries as child processes on OS-chosen ports.
//!
//! - [`world`]: [`TestEnv`], the database and queue prefix, cleaned up on
//!   drop, and what a test reads off them (counts, balances, queue depths);
//! - [`processes`]: [`Service`], starting and stopping the binaries,
//!   readiness, logs, metrics;
//! - [`client`]: [`Ingester`], signed webhook deliveries, and [`Answer`];
//!   the API's client is [`crate::api_client::Api`];
//! - [`fixtures`]: rows a test inserts itself (orders);
//! - [`notifier`]: starting `ledgerhook-notifier`;
//! - waiting for something observable: [`crate::eventually`].

pub mod client;
pub mod fixtures;
pub mod notifier;
pub mod processes;
pub mod world;

pub use crate::eventually::{eventually, seen};
pub use client::{Answer, Ingester};
pub use processes::Service;
pub use world::TestEnv;
