//! A Crossmint order webhook (through Svix), read tolerantly.
//!
//! Crossmint does not publish the exact envelope of its order webhooks: the
//! event name is in `type` and the order sits under `data` (or `payload` in
//! the seed documents' own integration). Unknown fields are ignored; the raw
//! bytes are kept elsewhere, so nothing here needs to be lossless.

use ledgerhook_domain::json;
use ledgerhook_domain::order_event::{MAX_ORDER_ID_LEN, plausible_email};
use ledgerhook_domain::{EventKind, EventParseError, OrderEvent, PaymentClaim, PaymentProvider};
use serde_json::Value;

use crate::fields::{amount_at, reference, text_at};

/// What a Crossmint event name means for the order: Crossmint's own names
/// and the seed documents' (`order.paid`, ...).
pub fn event_kind(event_type: &str) -> EventKind {
    match event_type {
        "orders.payment.succeeded" | "order.paid" => EventKind::PaymentSucceeded,
        "orders.payment.failed" | "order.failed" => EventKind::PaymentFailed,
        "order.cancelled" | "orders.cancelled" => EventKind::Cancelled,
        "orders.quote.created"
        | "orders.quote.updated"
        | "orders.delivery.initiated"
        | "orders.delivery.completed"
        | "orders.delivery.failed" => EventKind::Informational,
        _ => EventKind::Unknown,
    }
}

/// Reads a webhook body into the order event it announces.
pub fn parse(body: &[u8]) -> Result<OrderEvent, EventParseError> {
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
    let event = OrderEvent {
        provider: PaymentProvider::Crossmint,
        kind: event_kind(&event_type),
        event_type,
        order_id,
        user_id: reference(metadata, "userId"),
        package_id: reference(metadata, "packageId"),
        payment: payment_claim(&order),
        failure_reason: failure_reason(&order),
        buyer_email: buyer_email(&order),
        payment_intent: None,
        subscription: None,
    };
    event.refuse_nul()?;
    Ok(event)
}

/// Where the received amount sits, most authoritative first: Crossmint's
/// `payment.received`, the seed's flat `totalPrice`, then the quoted price.
pub(crate) fn payment_claim(order: &Value) -> Option<PaymentClaim> {
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
pub(crate) fn buyer_email(order: &Value) -> Option<String> {
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

pub(crate) fn failure_reason(order: &Value) -> Option<String> {
    text_at(order, &["payment", "failureReason", "code"])
        .or_else(|| text_at(order, &["reason"]))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledgerhook_domain::json::JsonError;
    use ledgerhook_domain::{AmountError, Usdt};

    const PAYLOADS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/payloads");

    fn example(name: &str) -> OrderEvent {
        let body = std::fs::read(format!("{PAYLOADS}/{name}.json")).unwrap();
        parse(&body).unwrap()
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
            parse(body.as_bytes()).unwrap().buyer_email
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
        let event = parse(br#"{"type":"orders.refund.issued","data":{"orderId":"o1"}}"#).unwrap();
        assert_eq!(event.kind, EventKind::Unknown);
        assert_eq!(event.event_type, "orders.refund.issued");
    }

    #[test]
    fn numeric_amounts_are_read_exactly_and_garbage_is_kept_as_an_error() {
        let event = parse(br#"{"type":"order.paid","payload":{"orderId":"o","totalPrice":10.10,"currency":"usdt"}}"#).unwrap();
        assert_eq!(
            event.payment.unwrap().amount,
            Ok(Usdt::parse("10.1").unwrap())
        );
        let event = parse(br#"{"type":"order.paid","payload":{"orderId":"o","totalPrice":"-10"}}"#)
            .unwrap();
        assert_eq!(event.payment.unwrap().amount, Err(AmountError::Negative));
        let event =
            parse(br#"{"type":"order.paid","payload":{"orderId":"o","totalPrice":{"x":1}}}"#)
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
                parse(body),
                Err(expected),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn json_errors_say_what_was_really_wrong() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let error = parse(deep.as_bytes()).unwrap_err();
        assert!(error.to_string().contains("deeper than"), "{error}");
        let error = parse(b"not json").unwrap_err();
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
            let event = parse(body.as_bytes()).unwrap();
            assert_eq!(
                event.payment.unwrap().amount,
                Err(AmountError::TooPrecise),
                "{amount} must not become 10"
            );
        }
        let event = parse(br#"{"type":"order.paid","payload":{"orderId":"o","totalPrice":1e400}}"#)
            .unwrap();
        assert_eq!(event.payment.unwrap().amount, Err(AmountError::NotDecimal));
        let digits = "9".repeat(5_000);
        let body =
            format!(r#"{{"type":"order.paid","payload":{{"orderId":"o","totalPrice":{digits}}}}}"#);
        let event = parse(body.as_bytes()).unwrap();
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
                parse(body.as_bytes()),
                Err(EventParseError::ContainsNul(field)),
                "{body}"
            );
        }
    }

    #[test]
    fn hostile_ids_are_kept_verbatim() {
        let body = r#"{"type":"order.paid","payload":{"orderId":"o'; drop table x;--\"é🙂","metadata":{"userId":"u\"1"}}}"#;
        let event = parse(body.as_bytes()).unwrap();
        assert_eq!(event.order_id, "o'; drop table x;--\"é🙂");
        assert_eq!(event.user_id.as_deref(), Some("u\"1"));
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics_on_bytes(body in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = parse(&body);
        }

        #[test]
        fn parser_never_panics_on_json_shapes(order_id in ".{0,120}", amount in ".{0,20}", kind in "(order|orders)\\.[a-z.]{0,20}") {
            let body = serde_json::json!({"type": kind, "data": {"orderId": order_id, "payment": {"received": {"amount": amount}}}});
            let _ = parse(body.to_string().as_bytes());
        }
    }
}
