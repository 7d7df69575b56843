//! What every ledgerhook process runs on, whatever it does: no table, no
//! provider and no payment rule lives here.
//!
//! - [`config`]: environment parsing that names every problem at once;
//!   [`secret_text`]: a string whose `Debug` never shows it;
//!   [`ca_file`]: a private CA's certificates, added to the system's roots;
//! - [`telemetry`]: logs, metrics and the build each process runs;
//!   [`shutdown`]: signals;
//! - [`retry`]: jitter, backoff, and reconnecting to a peer;
//! - [`http`]: serving HTTP with bounds on slow and idle clients;
//! - [`amqp`]: RabbitMQ's topology, connections, and the one way to publish
//!   a delivery with a publisher confirm.

pub mod amqp;
pub mod ca_file;
pub mod config;
pub mod http;
pub mod retry;
pub mod secret_text;
pub mod shutdown;
pub mod telemetry;
