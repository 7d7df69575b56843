//! Sending deliveries as Stripe does: `POST /webhooks/stripe`, signed with
//! `Stripe-Signature` by `ledgerhook_providers::stripe::signature::sign`, the
//! same code the fake Stripe and `ledgerhook-sign --provider stripe` use.

use serde_json::{Value, json};

use crate::harness::{Answer, Ingester};
use crate::webhook::now_secs;

/// The Stripe endpoint secret every test ingester holds. Not a real
/// secret: Stripe's are `whsec_` and 32 random characters.
pub const STRIPE_TEST_SECRET: &str = "whsec_test_ledgerhook_fake_stripe_secret";

/// The `Stripe-Signature` value for `body`, signed with `secret` at `timestamp`.
pub fn sign_stripe(secret: &str, timestamp: i64, body: &[u8]) -> String {
    ledgerhook_providers::stripe::signature::sign(secret, timestamp, body)
}

/// A fresh `evt_...` id, unique per call.
pub fn new_event_id() -> String {
    format!("evt_{}", uuid::Uuid::new_v4().simple())
}

/// A small Stripe event with `id`; enough for the edge, which reads only
/// the id (the worker reads the rest).
pub fn stripe_event(id: &str) -> Value {
    json!({
        "id": id,
        "object": "event",
        "type": "invoice.paid",
        "livemode": false,
        "data": {"object": {"id": "in_test", "object": "invoice", "amount_paid": 1000, "currency": "usd"}}
    })
}

impl Ingester {
    /// `/webhooks/stripe` on this ingester.
    pub fn stripe_url(&self) -> String {
        format!("{}/webhooks/stripe", self.base)
    }

    /// Sends `body` signed now with the test secret.
    pub async fn send_stripe(&self, body: &Value) -> Answer {
        let bytes = serde_json::to_vec(body).expect("serialising a body");
        let signature = sign_stripe(STRIPE_TEST_SECRET, now_secs(), &bytes);
        self.send_stripe_raw(&[("stripe-signature", signature)], bytes)
            .await
    }

    /// Sends exactly these headers and bytes to `/webhooks/stripe`.
    pub async fn send_stripe_raw(&self, headers: &[(&str, String)], body: Vec<u8>) -> Answer {
        // A client of its own (the harness's is private to it); one per
        // request is cheap beside starting the ingester.
        let mut request = reqwest::Client::new()
            .post(self.stripe_url())
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        Answer::read(request.send().await.expect("the ingester answers")).await
    }
}

/// Stripe's `checkout.session.completed` for a paid session of `package`
/// at `cents`, by `user`, under event id `event_id` (the shape of
/// tests/payloads/stripe/checkout.session.completed.json, trimmed).
pub fn checkout_completed(
    event_id: &str,
    session: &str,
    intent: &str,
    user: &str,
    package: &str,
    cents: i64,
) -> Value {
    json!({
        "id": event_id,
        "object": "event",
        "type": "checkout.session.completed",
        "livemode": false,
        "data": {"object": {
            "id": session,
            "object": "checkout.session",
            "amount_total": cents,
            "currency": "usd",
            "client_reference_id": user,
            "metadata": {"userId": user, "packageId": package},
            "mode": "payment",
            "payment_intent": intent,
            "payment_status": "paid",
            "status": "complete"
        }}
    })
}
