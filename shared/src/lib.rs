//! Code shared by the ledgerhook ingester, worker and API.
//!
//! Layout:
//! - [`domain`]: money, packages, order events and the order state machine (no I/O);
//! - [`svix`]: the webhook signature scheme, verifying and signing;
//! - [`json`]: the one definition of an acceptable JSON body;
//! - [`config`]: environment parsing that names every problem at once;
//! - [`crossmint`]: Crossmint's orders API (creating orders, asking about one);
//! - [`stripe`]: Stripe's signatures, events and Checkout Sessions (card payments);
//! - [`deliveries`]: the recorded deliveries and the outbox (their tables' only SQL);
//! - [`ledger`]: applying order events, exactly once; [`credits`]: spending and expiry;
//!   [`usage`]: spends per user per day, never failing a spend;
//! - [`notifications`]: the grant notifications' outbox (email, chat), sent apart;
//! - [`db`] and [`amqp`]: PostgreSQL and RabbitMQ set-up and contracts;
//!   [`ca_file`]: a private CA's certificates, added to the system's roots;
//! - [`retry`]: jitter, backoff, and reconnecting to a peer;
//! - [`http`]: serving HTTP with bounds on slow and idle clients;
//! - [`telemetry`], [`shutdown`]: logs, metrics and signals for the binaries;
//!   [`secret_text`]: a string whose `Debug` never shows it.

pub mod amqp;
pub mod ca_file;
pub mod config;
pub mod credits;
pub mod crossmint;
pub mod db;
pub mod deliveries;
pub mod domain;
pub mod http;
pub mod json;
pub mod ledger;
pub mod notifications;
pub mod retry;
pub mod secret_text;
pub mod shutdown;
pub mod stripe;
pub mod svix;
pub mod telemetry;
pub mod usage;
