//! ledgerhook's integration tests, one binary: each module is a feature or
//! a fault, run against real PostgreSQL and RabbitMQ and the real binaries
//! (`ledgerhook_tests::harness`). One binary links the tree once, instead
//! of once per file, and lets the modules share fixtures (a Python venv,
//! the harness's sweep of abandoned worlds).
//!
//! Run one module with `cargo test -p ledgerhook-tests --test it MODULE::`.
// The tests look at the database from outside, as an operator would, to
// check what the services wrote (see clippy.toml).
#![allow(clippy::disallowed_methods)]

mod admin_docs;
mod alerting;
mod api_auth;
mod api_confirm;
mod api_credits;
mod api_edges;
mod api_order_keys;
mod api_orders;
mod api_schemathesis;
mod api_stripe_orders;
mod api_timeouts;
mod api_usage;
mod bad_input;
mod carriers;
mod cli_help;
mod console;
mod console_browser;
mod crashes;
mod duplicate_storm;
mod erasure;
mod failover_ingesters;
mod failover_postgres;
mod failover_rabbitmq;
mod faults_broker;
mod faults_postgres;
mod faults_rabbitmq;
mod grants;
mod idempotency;
mod ingester_shutdown;
mod log_correlation;
mod metrics_exported;
mod migrate;
mod notifications;
mod operator;
mod out_of_order;
mod reconcile;
mod recovery;
mod rejections;
mod retention;
mod retries;
mod runbooks;
mod slow_clients;
mod stripe_ingest;
mod stripe_payments;
mod subscriptions;
mod tls;
mod worker_health;
