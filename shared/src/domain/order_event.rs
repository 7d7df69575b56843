//! What a Crossmint webhook body says about an order, parsed tolerantly.
//!
//! Crossmint does not publish the exact envelope of its order webhooks: the
//! event name is in `type` and the order sits under `data` (or `payload` in
//! the seed documents' own integration). Unknown fields are ignored; the raw
//! bytes are kept elsewhere, so nothing here needs to be lossless.

use serde_json::Value;

use super::payment_provider::PaymentProvider;
use super::usdt::{AmountError, Usdt};
use crate::json::{self, JsonError};

/// Longest order id we accept (the seed's `provider_order_id VARCHAR(100)`).
pub const MAX_ORDER_ID_LEN: usize = 100;
/// Longest user or package id taken from metadata.
const MAX_REF_LEN: usize = 200;
/// Longest email address accepted (RFC 5321's limit on a forward path).
pub const MAX_EMAIL_LEN: usize = 254;

/// What an event means for the order's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Money was received: `orders.payment.succeeded`, `order.paid`.
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

impl EventKind {
    pub fn of(event_type: &str) -> Self {
        match event_type {
            "orders.payment.succeeded" | "order.paid" => Self::PaymentSucceeded,
            "orders.payment.failed" | "order.failed" => Self::PaymentFailed,
            "order.cancelled" | "orders.cancelled" => Self::Cancelled,
            "orders.quote.created"
            | "orders.quote.updated"
            | "orders.delivery.initiated"
            | "orders.delivery.completed"
            | "orders.delivery.failed" => Self::Informational,
            _ => Self::Unknown,
        }
    }
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
    /// Stripe only: the PaymentIntent that paid, which refunds and disputes
    /// name later. An order already holding it is the order this event is
    /// about, whatever object (session, invoice) announced the payment.
    pub payment_intent: Option<String>,
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
    pub fn parse(body: &[u8]) -> Result<Self, EventParseError> {
        let Value::Object(mut envelope) = json::parse(body)? else {
            return Err(EventParseError::NotAnObject);
        };
        let event_type = match envelope.remove("type") {
            Some(Value::String(t)) if !t.trim().is_empty() => t,
            _ => return Err(EventParseError::MissingType),
        };
        let order = [envelope.remove("data"), envelope.remove("payload")]
            .into_iter()
            .flatten()
            .find(Value::is_object)
            .ok_or(EventParseError::MissingOrder)?;
        let order_id = match order.get("orderId") {
            Some(Value::String(id)) => id.trim().to_owned(),
            _ => return Err(EventParseError::MissingOrderId),
        };
        if order_id.is_empty() || order_id.chars().count() > MAX_ORDER_ID_LEN {
            return Err(EventParseError::InvalidOrderId);
        }

        let metadata = order.get("metadata");
        let event = Self {
            provider: PaymentProvider::Crossmint,
            kind: EventKind::of(&event_type),
            event_type,
            order_id,
            user_id: reference(metadata, "userId"),
            package_id: reference(metadata, "packageId"),
            payment: payment_claim(&order),
            failure_reason: failure_reason(&order),
            buyer_email: buyer_email(&order),
            payment_intent: None,
        };
        event.refuse_nul()?;
        Ok(event)
    }

    /// Every text this event would write to the database, by field name.
    pub(crate) fn refuse_nul(&self) -> Result<(), EventParseError> {
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

/// A short id from metadata; absent, empty or oversized counts as absent.
pub(crate) fn reference(metadata: Option<&Value>, key: &str) -> Option<String> {
    let text = metadata?.get(key)?.as_str()?.trim();
    (!text.is_empty() && text.chars().count() <= MAX_REF_LEN).then(|| text.to_owned())
}

pub(crate) fn text_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(value, |v, key| v.get(key))?.as_str()
}

/// An amount may come as a decimal string (the documented form) or, from a
/// sloppier sender, as a JSON number; either way it goes through the exact
/// decimal parser as text, never through a float.
fn amount_at(value: &Value, path: &[&str]) -> Option<Result<Usdt, AmountError>> {
    let found = path.iter().try_fold(value, |v, key| v.get(key))?;
    match found {
        Value::String(text) => Some(Usdt::parse(text)),
        Value::Number(number) => Some(Usdt::parse(&number.to_string())),
        Value::Null => None,
        _ => Some(Err(AmountError::NotDecimal)),
    }
}

/// Where the received amount sits, most authoritative first: Crossmint's
/// `payment.received`, the seed's flat `totalPrice`, then the quoted price.
pub(super) fn payment_claim(order: &Value) -> Option<PaymentClaim> {
    let sources: [(&[&str], &[&str]); 3] = [
        (
            &["payment", "received", "amount"],
            &["payment", "received", "currency"],
        ),
        (&["totalPrice"], &["currency"]),
        (
            &["quote", "totalPrice", "amount"],
            &["quote", "totalPrice", "currency"],
        ),
    ];
    let (amount, currency_path) = sources.iter().find_map(|(amount_path, currency_path)| {
        amount_at(order, amount_path).map(|amount| (amount, *currency_path))
    })?;
    let currency = text_at(order, currency_path)
        .or_else(|| text_at(order, &["payment", "currency"]))
        .map(|c| c.trim().to_ascii_uppercase());
    let chain = text_at(order, &["payment", "received", "chain"])
        .or_else(|| text_at(order, &["chainUsed"]))
        .or_else(|| text_at(order, &["payment", "method"]))
        .map(str::to_owned);
    let transaction_hash = text_at(order, &["payment", "received", "txId"])
        .or_else(|| text_at(order, &["transactionHash"]))
        .map(str::to_owned);
    Some(PaymentClaim {
        amount,
        currency,
        chain,
        transaction_hash,
    })
}

/// The buyer's address, where Crossmint's order carries one: the receipt
/// address first (the one the buyer asked receipts to go to), then the
/// recipient's (an order delivered to an email-backed wallet).
pub(super) fn buyer_email(order: &Value) -> Option<String> {
    [
        text_at(order, &["payment", "receiptEmail"]),
        text_at(order, &["recipient", "email"]),
    ]
    .into_iter()
    .flatten()
    .map(str::trim)
    .find(|address| plausible_email(address))
    .map(str::to_owned)
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

pub(super) fn failure_reason(order: &Value) -> Option<String> {
    text_at(order, &["payment", "failureReason", "code"])
        .or_else(|| text_at(order, &["reason"]))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYLOADS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/payloads");

    fn example(name: &str) -> OrderEvent {
        let body = std::fs::read(format!("{PAYLOADS}/{name}.json")).unwrap();
        OrderEvent::parse(&body).unwrap()
    }

    #[test]
    fn crossmint_payment_succeeded_under_data() {
        let event = example("orders.payment.succeeded");
        assert_eq!(event.kind, EventKind::PaymentSucceeded);
        assert_eq!(event.order_id, "9f1c2d7e-3b4a-4c5d-8e6f-0a1b2c3d4e5f");
        assert_eq!(
            event.user_id.as_deref(),
            Some("user_01HZX3K9Q2W8E7R6T5Y4U3I2O1")
        );
        assert_eq!(event.package_id.as_deref(), Some("pro"));
        let payment = event.payment.unwrap();
        assert_eq!(payment.amount, Ok(Usdt::from_whole(50)));
        assert_eq!(payment.currency.as_deref(), Some("USDT"));
        assert_eq!(payment.chain.as_deref(), Some("base"));
        assert!(payment.transaction_hash.unwrap().starts_with("0x5e1f"));
    }

    #[test]
    fn seed_order_paid_under_payload() {
        let event = example("order.paid");
        assert_eq!(event.kind, EventKind::PaymentSucceeded);
        assert_eq!(event.order_id, "cm-order-7d3e2f1a");
        assert_eq!(event.package_id.as_deref(), Some("vip"));
        let payment = event.payment.unwrap();
        assert_eq!(payment.amount, Ok(Usdt::from_whole(100)));
        assert_eq!(payment.currency.as_deref(), Some("USDT"));
        assert_eq!(payment.chain.as_deref(), Some("arbitrum"));
    }

    #[test]
    fn failure_and_cancellation_and_delivery_events() {
        let failed = example("orders.payment.failed");
        assert_eq!(failed.kind, EventKind::PaymentFailed);
        assert_eq!(failed.failure_reason.as_deref(), Some("insufficient-funds"));

        let cancelled = example("order.cancelled");
        assert_eq!(cancelled.kind, EventKind::Cancelled);
        assert_eq!(cancelled.failure_reason.as_deref(), Some("user-cancelled"));

        let delivered = example("orders.delivery.completed");
        assert_eq!(delivered.kind, EventKind::Informational);
        assert!(delivered.payment.is_none(), "no amount in a delivery event");
    }

    #[test]
    fn the_buyers_email_comes_from_the_receipt_then_the_recipient() {
        let parse = |order: &str| {
            let body = format!(
                r#"{{"type":"orders.payment.succeeded","data":{{"orderId":"o",{order}}}}}"#
            );
            OrderEvent::parse(body.as_bytes()).unwrap().buyer_email
        };
        assert_eq!(
            parse(r#""payment":{"receiptEmail":" buyer@example.com "},"recipient":{"email":"wallet@example.com"}"#).as_deref(),
            Some("buyer@example.com")
        );
        assert_eq!(
            parse(r#""recipient":{"email":"wallet@example.com"}"#).as_deref(),
            Some("wallet@example.com")
        );
        assert_eq!(
            parse(r#""payment":{"receiptEmail":"not an address"},"recipient":{"email":"w@example.com"}"#).as_deref(),
            Some("w@example.com"),
            "an unusable receipt address falls back to the recipient's"
        );
        assert_eq!(parse(r#""recipient":{"walletAddress":"0x12"}"#), None);
        assert_eq!(example("orders.delivery.completed").buyer_email, None);
    }

    #[test]
    fn implausible_email_addresses_are_dropped() {
        for address in [
            "a@example.com",
            "first.last+tag@sub.example.co",
            "ü@bücher.example",
        ] {
            assert!(plausible_email(address), "{address}");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long = format!("a@{}.com", "b".repeat(250));
        for address in [
            "",
            "no-at.example.com",
            "@example.com",
            "a@",
            "a@localhost",
            "a@example..com",
            "a@-example.com",
            "a b@example.com",
            "a@example.com\r\nBcc: x@evil.example",
            "a@example.com>",
            "<a@example.com",
            "a@b@example.com",
            "a\u{0}@example.com",
            long_local.as_str(),
            long.as_str(),
        ] {
            assert!(!plausible_email(address), "{address:?}");
        }
    }

    #[test]
    fn unknown_types_parse_as_unknown() {
        let event =
            OrderEvent::parse(br#"{"type":"orders.refund.issued","data":{"orderId":"o1"}}"#)
                .unwrap();
        assert_eq!(event.kind, EventKind::Unknown);
        assert_eq!(event.event_type, "orders.refund.issued");
    }

    #[test]
    fn numeric_amounts_are_read_exactly_and_garbage_is_kept_as_an_error() {
        let event = OrderEvent::parse(br#"{"type":"order.paid","payload":{"orderId":"o","totalPrice":10.10,"currency":"usdt"}}"#).unwrap();
        assert_eq!(
            event.payment.unwrap().amount,
            Ok(Usdt::parse("10.1").unwrap())
        );
        let event = OrderEvent::parse(
            br#"{"type":"order.paid","payload":{"orderId":"o","totalPrice":"-10"}}"#,
        )
        .unwrap();
        assert_eq!(event.payment.unwrap().amount, Err(AmountError::Negative));
        let event = OrderEvent::parse(
            br#"{"type":"order.paid","payload":{"orderId":"o","totalPrice":{"x":1}}}"#,
        )
        .unwrap();
        assert_eq!(event.payment.unwrap().amount, Err(AmountError::NotDecimal));
    }

    #[test]
    fn unreadable_bodies_say_why() {
        let cases: [(&[u8], EventParseError); 9] = [
            (b"\xff", EventParseError::NotJson(JsonError::NotUtf8)),
            (b"[1,2]", EventParseError::NotAnObject),
            (b"7", EventParseError::NotAnObject),
            (br#"{"data":{"orderId":"o"}}"#, EventParseError::MissingType),
            (
                br#"{"type":7,"data":{"orderId":"o"}}"#,
                EventParseError::MissingType,
            ),
            (br#"{"type":"order.paid"}"#, EventParseError::MissingOrder),
            (
                br#"{"type":"order.paid","data":"o"}"#,
                EventParseError::MissingOrder,
            ),
            (
                br#"{"type":"order.paid","data":{"id":"o"}}"#,
                EventParseError::MissingOrderId,
            ),
            (
                br#"{"type":"order.paid","data":{"orderId":"  "}}"#,
                EventParseError::InvalidOrderId,
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(
                OrderEvent::parse(body),
                Err(expected),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn json_errors_say_what_was_really_wrong() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let error = OrderEvent::parse(deep.as_bytes()).unwrap_err();
        assert!(error.to_string().contains("deeper than"), "{error}");
        let error = OrderEvent::parse(b"not json").unwrap_err();
        assert!(
            error.to_string().starts_with("the body is not JSON"),
            "{error}"
        );
    }

    #[test]
    fn amounts_sent_as_numbers_beyond_six_decimals_are_never_rounded() {
        for amount in ["9.99999999999999999999", "10.0000000000000001"] {
            let body = format!(
                r#"{{"type":"order.paid","payload":{{"orderId":"o","totalPrice":{amount},"currency":"USDT"}}}}"#
            );
            let event = OrderEvent::parse(body.as_bytes()).unwrap();
            assert_eq!(
                event.payment.unwrap().amount,
                Err(AmountError::TooPrecise),
                "{amount} must not become 10"
            );
        }
        let event = OrderEvent::parse(
            br#"{"type":"order.paid","payload":{"orderId":"o","totalPrice":1e400}}"#,
        )
        .unwrap();
        assert_eq!(event.payment.unwrap().amount, Err(AmountError::NotDecimal));
        let digits = "9".repeat(5_000);
        let body =
            format!(r#"{{"type":"order.paid","payload":{{"orderId":"o","totalPrice":{digits}}}}}"#);
        let event = OrderEvent::parse(body.as_bytes()).unwrap();
        assert_eq!(event.payment.unwrap().amount, Err(AmountError::TooLarge));
    }

    #[test]
    fn a_nul_in_any_stored_text_is_refused_by_field() {
        let cases = [
            (
                r#"{"type":"order.paid","data":{"orderId":"o\u0000x"}}"#,
                "orderId",
            ),
            (
                r#"{"type":"order\u0000.paid","data":{"orderId":"o"}}"#,
                "type",
            ),
            (
                r#"{"type":"order.paid","data":{"orderId":"o","metadata":{"userId":"u\u0000"}}}"#,
                "metadata.userId",
            ),
            (
                r#"{"type":"order.paid","data":{"orderId":"o","totalPrice":"10","transactionHash":"0x\u0000"}}"#,
                "transaction hash",
            ),
        ];
        for (body, field) in cases {
            assert_eq!(
                OrderEvent::parse(body.as_bytes()),
                Err(EventParseError::ContainsNul(field)),
                "{body}"
            );
        }
    }

    #[test]
    fn hostile_ids_are_kept_verbatim() {
        let body = r#"{"type":"order.paid","payload":{"orderId":"o'; drop table x;--\"é🙂","metadata":{"userId":"u\"1"}}}"#;
        let event = OrderEvent::parse(body.as_bytes()).unwrap();
        assert_eq!(event.order_id, "o'; drop table x;--\"é🙂");
        assert_eq!(event.user_id.as_deref(), Some("u\"1"));
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics_on_bytes(body in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = OrderEvent::parse(&body);
        }

        #[test]
        fn parser_never_panics_on_json_shapes(order_id in ".{0,120}", amount in ".{0,20}", kind in "(order|orders)\\.[a-z.]{0,20}") {
            let body = serde_json::json!({"type": kind, "data": {"orderId": order_id, "payment": {"received": {"amount": amount}}}});
            let _ = OrderEvent::parse(body.to_string().as_bytes());
        }
    }
}
