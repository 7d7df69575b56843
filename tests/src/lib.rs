//! Test support for ledgerhook: real PostgreSQL, real RabbitMQ, the real
//! binaries. Used by the integration tests in `tests/it/` and by the load
//! generator.
//!
//! - [`harness`]: a fresh database and queue prefix per test, the ingester
//!   and workers as child processes on OS-chosen ports, cleaned up on drop;
//! - [`eventually`]: waiting for an observation instead of sleeping;
//! - [`webhook`]: signed deliveries and example bodies;
//! - [`stripe_webhook`]: the same for Stripe (`/webhooks/stripe`);
//! - [`scrape`]: reading a value off a `/metrics` page;
//! - [`own_postgres`], [`own_rabbitmq`]: servers of a test's own, to stop and start;
//! - [`severable`]: a TCP forwarder a test can cut, to take a server away.
//! - [`api_client`]: the frontend's API as a test calls it, with tokens;
//! - [`fake_crossmint`]: Crossmint's orders API, played by the tests;
//! - [`fake_stripe`]: Stripe's Checkout Sessions and its webhooks, likewise;
//! - [`leftovers`]: removing the worlds of killed test runs;
//! - [`tls`]: a CA made at test time, server certificates and PEM files;
//! - [`monitoring`], [`alert_receiver`]: Prometheus and Alertmanager of a
//!   test's own, and the webhook endpoint their alerts reach.

// The harness looks at the database from outside (see clippy.toml).
#![allow(clippy::disallowed_methods)]

pub mod alert_receiver;
pub mod api_client;
pub mod balancer;
pub mod console;
pub mod eventually;
pub mod fake_crossmint;
pub mod fake_stripe;
pub mod harness;
pub mod jwks_server;
pub mod leftovers;
pub mod monitoring;
pub mod offline;
pub mod own_cluster;
pub mod own_postgres;
pub mod own_rabbitmq;
pub mod python_venv;
pub mod scrape;
pub mod severable;
pub mod stripe_python;
pub mod stripe_webhook;
pub mod tls;
pub mod webhook;
