//! ledgerhook's PostgreSQL: the only crate that runs SQL (a root
//! `clippy.toml` refuses `sqlx::query*` everywhere else), with the
//! migrations. One module per table family, each the only writer of its
//! tables:
//!
//! - [`db`]: connecting, migrating, telling a transient failure;
//! - [`deliveries`]: `webhook_deliveries` and `delivery_outbox`;
//! - [`ledger`]: applying order events exactly once (orders, their events,
//!   grants); [`credits`]: spending, expiry, taking back, granting by hand;
//! - [`usage`]: spends per user per day, never failing a spend;
//! - [`notifications`]: the grant notifications' outbox.
#![allow(clippy::disallowed_methods)]

pub mod credits;
pub mod db;
pub mod deliveries;
pub mod ledger;
pub mod notifications;
pub mod usage;
