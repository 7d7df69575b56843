//! The payment domain: money, packages, order events and the order state
//! machine. No I/O here; everything is checked at construction.

pub mod credit_terms;
pub mod order_answer;
pub mod order_decision;
pub mod order_event;
pub mod package;
pub mod payment_provider;
pub mod reversal;
pub mod usdt;

pub use credit_terms::CreditTerms;
pub use order_decision::{Decision, OrderFacts, OrderStatus, decide};
pub use order_event::{EventKind, EventParseError, OrderEvent, PaymentClaim};
pub use package::{CURRENCY, Credits, PACKAGES, Package, find_package};
pub use payment_provider::PaymentProvider;
pub use reversal::{PaymentReversal, ReversalKind, credits_share};
pub use usdt::{AmountError, Usdt};
