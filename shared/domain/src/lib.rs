//! The payment domain: money, packages, deliveries, order events and the
//! order state machine. No I/O here (no database, broker, network or
//! clock-driven task); everything is checked at construction.

pub mod credit_terms;
pub mod delivery;
pub mod json;
pub mod notification_channels;
pub mod notification_facts;
pub mod order_decision;
pub mod order_event;
pub mod package;
pub mod payment_provider;
pub mod plan;
pub mod provider;
pub mod reversal;
pub mod subscription;
pub mod usdt;

pub use credit_terms::CreditTerms;
pub use delivery::Delivery;
pub use notification_channels::{Channel, NotifyChannels};
pub use notification_facts::{GrantFacts, NoticeKind, format_credits};
pub use order_decision::{Decision, OrderFacts, OrderStatus, decide};
pub use order_event::{
    EventKind, EventParseError, OrderEvent, PaymentClaim, PaymentEvent, SubscriptionPeriod,
};
pub use package::{CURRENCY, Credits, PACKAGES, Package, find_bought, find_package};
pub use payment_provider::PaymentProvider;
pub use plan::{Interval, PLANS, Plan, find_plan};
pub use provider::Provider;
pub use reversal::{PaymentReversal, ReversalKind, credits_share};
pub use subscription::SubscriptionChange;
pub use usdt::{AmountError, Usdt};
