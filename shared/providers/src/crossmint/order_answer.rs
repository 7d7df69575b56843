//! Crossmint's answer about one order (`GET /2022-06-09/orders/{orderId}`:
//! the order object itself, not a webhook envelope), read as an order
//! event. This is how `reconcile` turns "Crossmint says it was paid" into
//! the same event a payment webhook would have been, so the worker applies
//! it through the same state machine and ledger guards.

use serde_json::Value;

use ledgerhook_domain::json;
use ledgerhook_domain::order_event::MAX_ORDER_ID_LEN;
use ledgerhook_domain::{EventKind, EventParseError, OrderEvent, PaymentProvider};

use super::webhook::{buyer_email, failure_reason, payment_claim};
use crate::fields::reference;

/// The event name stored for a payment found by reconcile.
pub const RECONCILED_PAYMENT: &str = "reconcile.payment.completed";
/// The event name stored for any other payment status reconcile saw.
pub const RECONCILED_STATUS: &str = "reconcile.payment.status";

/// Crossmint's payment status meaning the money was received.
const PAID: &str = "completed";

/// Reads an order object. Its `payment.status` says what happened:
/// `completed` is a payment (the same as `orders.payment.succeeded`);
/// anything else is informational.
pub fn parse(body: &[u8]) -> Result<OrderEvent, EventParseError> {
    let order = json::parse(body)?;
    if !order.is_object() {
        return Err(EventParseError::NotAnObject);
    }
    let order_id = match order.get("orderId") {
        Some(Value::String(id)) => id.trim().to_owned(),
        _ => return Err(EventParseError::MissingOrderId),
    };
    if order_id.is_empty() || order_id.chars().count() > MAX_ORDER_ID_LEN {
        return Err(EventParseError::InvalidOrderId);
    }
    let paid = payment_status(&order) == Some(PAID);
    let metadata = order.get("metadata");
    let event = OrderEvent {
        provider: PaymentProvider::Crossmint,
        event_type: if paid {
            RECONCILED_PAYMENT
        } else {
            RECONCILED_STATUS
        }
        .to_owned(),
        kind: if paid {
            EventKind::PaymentSucceeded
        } else {
            EventKind::Informational
        },
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

/// `payment.status` of an order object, if it has one.
pub fn payment_status(order: &Value) -> Option<&str> {
    order.get("payment")?.get("status")?.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledgerhook_domain::Usdt;

    fn answer(status: &str) -> Vec<u8> {
        serde_json::json!({
            "orderId": "ord-1",
            "phase": "delivery",
            "quote": {"status": "valid", "totalPrice": {"amount": "50.00", "currency": "usdt"}},
            "payment": {
                "status": status,
                "method": "base",
                "currency": "usdt",
                "received": {"amount": "50.00", "currency": "usdt", "chain": "base", "txId": "0xabc"},
            },
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_completed_payment_is_a_payment_event() {
        let event = parse(&answer("completed")).unwrap();
        assert_eq!(event.kind, EventKind::PaymentSucceeded);
        assert_eq!(event.event_type, RECONCILED_PAYMENT);
        assert_eq!(event.order_id, "ord-1");
        let payment = event.payment.unwrap();
        assert_eq!(payment.amount, Ok(Usdt::from_whole(50)));
        assert_eq!(payment.currency.as_deref(), Some("USDT"));
        assert_eq!(payment.transaction_hash.as_deref(), Some("0xabc"));
    }

    #[test]
    fn any_other_status_is_informational() {
        for status in ["awaiting-payment", "in-progress", "failed", ""] {
            let event = parse(&answer(status)).unwrap();
            assert_eq!(event.kind, EventKind::Informational, "{status}");
        }
    }

    #[test]
    fn an_answer_without_an_order_id_is_refused() {
        assert_eq!(
            parse(br#"{"payment":{"status":"completed"}}"#),
            Err(EventParseError::MissingOrderId)
        );
        assert_eq!(parse(b"[1]"), Err(EventParseError::NotAnObject));
    }
}
