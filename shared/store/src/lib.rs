//! ledgerhook's PostgreSQL: the only crate that runs SQL (a root
//! `clippy.toml` refuses `sqlx::query*` everywhere else), with the
//! migrations. One module per table family, each the only writer of its
//! tables:
//!
//! - [`audit`]: the operator's audit trail; [`control`]: the pause switch;
//! - [`db`]: connecting, migrating, telling a transient failure;
//!   [`failover`]: following the writable host of a multi-host URL;
//! - [`deliveries`]: `webhook_deliveries` and `delivery_outbox`;
//! - [`ledger`]: applying order events exactly once (orders, their events,
//!   grants); [`credits`]: spending, expiry, taking back, granting by hand;
//! - [`user_orders`]: what a user reads of their orders;
//! - [`order_keys`]: the `Idempotency-Key` of order creation;
//!   [`rate_limits`]: the API's per-user sliding windows;
//! - [`rejected`]: the last requests the ingester refused, per reason;
//!   [`replay_jobs`]: the console's background replays;
//! - [`operators`]: who may use the console, and their sessions;
//!   [`overview`]: the console's bounded look at the newest rows;
//! - [`usage`]: spends per user per day, never failing a spend;
//! - [`notifications`]: the grant notifications' outbox;
//! - [`retention`]: one retention run at a time; [`erasure`]: erasing a
//!   buyer, every table's owner called in one transaction.
#![allow(clippy::disallowed_methods)]

pub mod api_keys;
pub mod audit;
pub mod control;
pub mod credits;
pub mod db;
pub mod deliveries;
pub mod erasure;
pub mod failover;
pub mod ledger;
pub mod notifications;
pub mod operators;
pub mod order_keys;
pub mod overview;
pub mod rate_limits;
pub mod rejected;
pub mod replay_jobs;
pub mod retention;
pub mod subscriptions;
pub mod usage;
pub mod user_orders;
