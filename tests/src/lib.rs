//! Test support for ledgerhook: real PostgreSQL, real RabbitMQ, the real
//! binaries. Used by the integration tests in `tests/tests/` and by the load
//! generator.
//!
//! - [`harness`]: a fresh database and queue prefix per test, the ingester
//!   and workers as child processes on OS-chosen ports, cleaned up on drop;
//! - [`webhook`]: signed deliveries and example bodies;
//! - [`scrape`]: reading a value off a `/metrics` page.

pub mod harness;
pub mod scrape;
pub mod webhook;
