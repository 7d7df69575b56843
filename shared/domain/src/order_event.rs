//! What a payment event says about an order, whoever sent it: the
//! provider-neutral event every provider's parser (`ledgerhook_providers`)
//! reads its bodies into, and the worker applies.

use super::payment_provider::PaymentProvider;
use super::usdt::{AmountError, Usdt};
use crate::json::JsonError;

/// Longest order id we accept (the seed's `provider_order_id VARCHAR(100)`).
pub const MAX_ORDER_ID_LEN: usize = 100;
/// Longest user or package id taken from metadata.
pub const MAX_REF_LEN: usize = 200;
/// Longest email address accepted (RFC 5321's limit on a forward path).
pub const MAX_EMAIL_LEN: usize = 254;

/// What an event means for the order's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Money was received.
    PaymentSucceeded,
    /// The payment failed: `orders.payment.failed`, `order.failed`.
    PaymentFailed,
    /// The buyer or the provider cancelled: `order.cancelled`.
    Cancelled,
    /// Quote and delivery events: recorded on the order, no status change.
    Informational,
    /// A type we do not know: recorded and acknowledged, never retried.
    Unknown,
}

/// The payment an event claims was received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentClaim {
    /// Kept as a result: a malformed amount on a success event is a conflict
    /// to review, not an unreadable event.
    pub amount: Result<Usdt, AmountError>,
    /// Upper-cased; Crossmint writes `usdt`, the seed `USDT`.
    pub currency: Option<String>,
    pub chain: Option<String>,
    pub transaction_hash: Option<String>,
}

/// What a delivery's body says: something about an order (a payment, a
/// failure, a status), or money going back on a paid one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentEvent {
    Order(OrderEvent),
    Reversal(crate::PaymentReversal),
    /// A subscription's new state (its payments are order events).
    Subscription(crate::SubscriptionChange),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderEvent {
    /// Who took (or was to take) the payment this event is about.
    pub provider: PaymentProvider,
    /// The event name exactly as received.
    pub event_type: String,
    pub kind: EventKind,
    /// The order's id at its provider (Crossmint's order id; Stripe's
    /// Checkout Session or invoice id).
    pub order_id: String,
    pub user_id: Option<String>,
    pub package_id: Option<String>,
    pub payment: Option<PaymentClaim>,
    pub failure_reason: Option<String>,
    /// Where to tell the buyer their credits arrived: Crossmint's
    /// `payment.receiptEmail`, else `recipient.email`. Untrusted: checked
    /// lightly here (an address that fails is dropped, never an error: a
    /// notification must not stop a grant) and used only as a recipient.
    pub buyer_email: Option<String>,
    /// The provider's id of the payment itself, where it differs from the
    /// order's (a Stripe PaymentIntent): later refunds and disputes name it.
    /// An order already holding it is the order this event is about,
    /// whatever object (session, invoice) announced the payment.
    pub payment_intent: Option<String>,
    /// Set when the order is one period of a subscription (a Stripe
    /// invoice the subscription raised).
    pub subscription: Option<SubscriptionPeriod>,
}

/// Which subscription a paid invoice belongs to, and the period it pays
/// for: its credits stay valid until the period's end plus the grace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionPeriod {
    pub subscription_id: String,
    /// Unix seconds.
    pub period_start: i64,
    /// Unix seconds.
    pub period_end: i64,
}

/// Why a body cannot be read as an order event. These are permanent: the same
/// bytes will never parse, so the message is parked, not retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventParseError {
    /// The ingester refuses such bodies at the edge; this covers rows
    /// recorded before it did, and replays.
    #[error(transparent)]
    NotJson(#[from] JsonError),
    #[error("the body is JSON but not an object")]
    NotAnObject,
    #[error("the body has no string `type`")]
    MissingType,
    #[error("the body has no order object under `data` or `payload`")]
    MissingOrder,
    #[error("the order has no string `orderId`")]
    MissingOrderId,
    #[error("the order id is empty or longer than {MAX_ORDER_ID_LEN} characters")]
    InvalidOrderId,
    /// A field another provider's envelope must have (Stripe's
    /// `data.object`, its `id`, a refund's `payment_intent`), by path.
    #[error("the event has no usable `{0}`")]
    Missing(&'static str),
    /// PostgreSQL text cannot hold U+0000; such an id is kept in the raw
    /// body and parked for a person, never half-written.
    #[error("`{0}` contains a NUL character")]
    ContainsNul(&'static str),
}

impl OrderEvent {
    /// Every text this event would write to the database, by field name.
    pub fn refuse_nul(&self) -> Result<(), EventParseError> {
        let payment = self.payment.as_ref();
        let texts = [
            ("type", Some(&self.event_type)),
            ("orderId", Some(&self.order_id)),
            ("metadata.userId", self.user_id.as_ref()),
            ("metadata.packageId", self.package_id.as_ref()),
            ("failure reason", self.failure_reason.as_ref()),
            ("payment_intent", self.payment_intent.as_ref()),
            ("currency", payment.and_then(|p| p.currency.as_ref())),
            ("chain", payment.and_then(|p| p.chain.as_ref())),
            (
                "transaction hash",
                payment.and_then(|p| p.transaction_hash.as_ref()),
            ),
        ];
        match texts
            .into_iter()
            .find(|(_, text)| text.is_some_and(|t| t.contains('\0')))
        {
            Some((field, _)) => Err(EventParseError::ContainsNul(field)),
            None => Ok(()),
        }
    }
}

/// A light check, not RFC 5322: one `@` between a local part of 1 to 64
/// characters and a dotted domain, no spaces, controls or angle brackets
/// (which could break out of a mail header), at most [`MAX_EMAIL_LEN`]
/// characters. The mail server has the last word.
pub fn plausible_email(address: &str) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    let forbidden = |c: char| c.is_whitespace() || c.is_control() || "<>()[]\\,;:\"@".contains(c);
    address.chars().count() <= MAX_EMAIL_LEN
        && (1..=64).contains(&local.chars().count())
        && !local.chars().any(forbidden)
        && !domain.chars().any(forbidden)
        && domain.contains('.')
        && domain
            .split('.')
            .all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'))
}
