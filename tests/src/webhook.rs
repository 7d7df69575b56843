//! Building and sending signed deliveries, as Svix would.

use std::time::{SystemTime, UNIX_EPOCH};

use ledgerhook_providers::svix::SigningSecret;
use serde_json::{Value, json};

/// Svix's published documentation secret: a public test value.
pub const TEST_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

pub fn test_secret() -> SigningSecret {
    SigningSecret::parse(TEST_SECRET).expect("the test secret parses")
}

pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs() as i64
}

/// A fresh `msg_...` id, unique per call.
pub fn new_delivery_id() -> String {
    format!("msg_{}", uuid::Uuid::new_v4().simple())
}

/// The three Svix headers for `body`, signed now with `secret`.
pub fn svix_headers(secret: &SigningSecret, id: &str, body: &[u8]) -> [(&'static str, String); 3] {
    let timestamp = now_secs();
    [
        ("svix-id", id.to_owned()),
        ("svix-timestamp", timestamp.to_string()),
        ("svix-signature", secret.sign(id, timestamp, body)),
    ]
}

/// Crossmint's `orders.payment.succeeded`, order under `data`.
pub fn payment_succeeded(order_id: &str, user_id: &str, package_id: &str, amount: &str) -> Value {
    json!({
        "type": "orders.payment.succeeded",
        "data": {
            "orderId": order_id,
            "phase": "delivery",
            "payment": {
                "status": "completed",
                "currency": "usdt",
                "received": {"amount": amount, "currency": "usdt", "chain": "base", "txId": format!("0x{order_id}")}
            },
            "metadata": {"userId": user_id, "packageId": package_id}
        }
    })
}

/// The seed documents' `order.paid`, order under `payload`.
pub fn order_paid(order_id: &str, user_id: &str, package_id: &str, amount: &str) -> Value {
    json!({
        "type": "order.paid",
        "payload": {
            "orderId": order_id,
            "totalPrice": amount,
            "currency": "USDT",
            "chainUsed": "arbitrum",
            "transactionHash": format!("0x{order_id}"),
            "metadata": {"userId": user_id, "packageId": package_id}
        }
    })
}

/// A non-payment event (`orders.delivery.completed`) for the same order.
pub fn delivery_completed(order_id: &str, user_id: &str, package_id: &str) -> Value {
    json!({
        "type": "orders.delivery.completed",
        "data": {
            "orderId": order_id,
            "phase": "completed",
            "payment": {"status": "completed", "currency": "usdt"},
            "metadata": {"userId": user_id, "packageId": package_id}
        }
    })
}

/// The price of a catalogue package as a decimal string.
pub fn price_of(package_id: &str) -> String {
    ledgerhook_domain::find_package(package_id)
        .expect("a catalogue package")
        .price
        .to_string()
}
