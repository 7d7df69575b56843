//! Orders paid through Stripe Checkout: `POST /api/payments/orders` with
//! `provider: "stripe"` creates a Checkout Session at a fake Stripe and
//! records the order pending before answering; the Idempotency-Key makes
//! one session; confirm and history show it like any order; a failing
//! Stripe, a missing key and an unknown provider are refused with their
//! codes and counted.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use ledgerhook_providers::stripe::signature::sign;
use ledgerhook_tests::api_client::Api;
use ledgerhook_tests::fake_crossmint::FakeCrossmint;
use ledgerhook_tests::fake_stripe::{Behaviour, FAKE_SECRET_KEY, FakeStripe};
use ledgerhook_tests::harness::{Answer, TestEnv};
use ledgerhook_tests::scrape;
use serde_json::{Value, json};

const ORDERS: &str = "/api/payments/orders";
const SUCCESS_URL: &str = "https://shop.example/paid?session={CHECKOUT_SESSION_ID}";

/// The API with Stripe pointed at `stripe`, and any `extra` variables.
async fn api_with_stripe(
    env: &TestEnv,
    crossmint: &FakeCrossmint,
    stripe: &FakeStripe,
    extra: &[(&str, &str)],
) -> Api {
    let mut vars = vec![
        ("STRIPE_API_URL", stripe.api_url.as_str()),
        ("STRIPE_SECRET_KEY", FAKE_SECRET_KEY),
        ("STRIPE_SUCCESS_URL", SUCCESS_URL),
        ("STRIPE_CANCEL_URL", "https://shop.example/cancelled"),
    ];
    vars.extend_from_slice(extra);
    env.start_api(&crossmint.api_url, &vars).await.unwrap()
}

async fn stripe_order(api: &Api, user: &str, key: Option<&str>, package: &str) -> Answer {
    let body = json!({"packageId": package, "provider": "stripe"});
    match key {
        Some(key) => {
            api.post_with_headers(ORDERS, user, &[("Idempotency-Key", key)], &body)
                .await
        }
        None => api.post(ORDERS, Some(user), &body).await,
    }
}

fn metric(page: &str, name: &str, labels: &[&str]) -> f64 {
    scrape::sum(page, name, labels)
}

#[tokio::test]
async fn a_stripe_order_is_a_checkout_session_recorded_pending_and_shown_like_any_order() {
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let stripe = FakeStripe::start().await.unwrap();
    let api = api_with_stripe(
        &env,
        &crossmint,
        &stripe,
        &[("CREDIT_VALIDITY_DAYS", "pro=365")],
    )
    .await;

    // Act: a Stripe order with a key, the same request again, then the key
    // for another package, and for the same package through Crossmint.
    let first = stripe_order(&api, "buyer-1", Some("key-1"), "pro").await;
    let again = stripe_order(&api, "buyer-1", Some("key-1"), "pro").await;
    let other = stripe_order(&api, "buyer-1", Some("key-1"), "vip").await;
    let other_provider = api
        .post_with_headers(
            ORDERS,
            "buyer-1",
            &[("Idempotency-Key", "key-1")],
            &json!({"packageId": "pro"}),
        )
        .await;

    // The answer: the session's id and hosted page, in USD, no client secret.
    assert_eq!(first.status, 201, "{first:?}");
    let session_id = first.body["orderId"].as_str().unwrap().to_owned();
    assert!(session_id.starts_with("cs_test_"), "{first:?}");
    assert_eq!(first.body["provider"], "stripe");
    assert_eq!(first.body["status"], "pending");
    assert_eq!(first.body["currency"], "USD");
    assert_eq!(first.body["amount"], "50.000000");
    assert_eq!(first.body["credits"], 3300);
    assert_eq!(first.body["creditsValidDays"], 365);
    assert_eq!(first.body["package"]["id"], "pro");
    assert_eq!(
        first.body["checkoutUrl"],
        format!("{}/c/pay/{session_id}", stripe.api_url)
    );
    assert!(first.body.get("clientSecret").is_none(), "{first:?}");

    // What Stripe received: a form, the price in whole cents, our metadata.
    let sent = stripe.requests();
    let request = &sent[0];
    assert_eq!(
        request.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    for (field, value) in [
        ("mode", "payment"),
        ("line_items[0][price_data][currency]", "usd"),
        ("line_items[0][price_data][unit_amount]", "5000"),
        ("line_items[0][quantity]", "1"),
        ("client_reference_id", "buyer-1"),
        ("metadata[userId]", "buyer-1"),
        ("metadata[packageId]", "pro"),
        ("payment_intent_data[metadata][userId]", "buyer-1"),
        ("payment_intent_data[metadata][packageId]", "pro"),
        ("success_url", SUCCESS_URL),
        ("cancel_url", "https://shop.example/cancelled"),
    ] {
        assert_eq!(request.field(field), Some(value), "{field}: {request:?}");
    }
    assert!(
        request
            .field("line_items[0][price_data][product_data][name]")
            .is_some_and(|name| !name.is_empty())
    );
    assert_eq!(request.field("ui_mode"), None, "hosted is the default");
    // The page stops taking payment when the order's timeout (30 minutes
    // by default) expires it.
    let expires_at: i64 = request.field("expires_at").unwrap().parse().unwrap();
    let from_now = expires_at - ledgerhook_tests::webhook::now_secs();
    assert!((29 * 60..=30 * 60).contains(&from_now), "{from_now}");
    let stripe_key = request.idempotency_key.clone().expect("an Idempotency-Key");
    assert!(!stripe_key.contains("key-1") && !stripe_key.contains("buyer-1"));

    // Recorded pending before the answer, as a Stripe order in USD.
    let row: (String, String, String, String, String, String, Option<i32>) = sqlx::query_as(
        "select provider, currency, user_id, package_id, amount::text, status, credits_valid_days
         from payment_orders where provider_order_id = $1",
    )
    .bind(&session_id)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        row,
        (
            "stripe".into(),
            "USD".into(),
            "buyer-1".into(),
            "pro".into(),
            "50.000000".into(),
            "pending".into(),
            Some(365)
        )
    );

    // The key replays the first answer and made one session.
    assert_eq!(again.status, 201, "{again:?}");
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(other.status, 409, "{other:?}");
    assert_eq!(other.body["code"], "DUPLICATE_ORDER");
    assert_eq!(other_provider.status, 409, "{other_provider:?}");
    assert_eq!(other_provider.body["code"], "DUPLICATE_ORDER");
    assert_eq!(other_provider.body["details"]["firstProvider"], "stripe");
    assert_eq!(stripe.session_count(), 1);
    assert_eq!(
        stripe.requests().len(),
        1,
        "the replay never reached Stripe"
    );

    // Without a key each request is its own session, with its own key.
    let plain = stripe_order(&api, "buyer-1", None, "starter").await;
    assert_eq!(plain.status, 201, "{plain:?}");
    assert_ne!(plain.body["orderId"], first.body["orderId"]);
    let sent = stripe.requests();
    assert_eq!(
        sent[1].field("line_items[0][price_data][unit_amount]"),
        Some("1000")
    );
    assert_ne!(
        sent[1].idempotency_key.as_deref(),
        Some(stripe_key.as_str())
    );

    // The default provider is still Crossmint, untouched.
    let crossmint_order = api
        .post(ORDERS, Some("buyer-1"), &json!({"packageId": "vip"}))
        .await;
    assert_eq!(crossmint_order.status, 201, "{crossmint_order:?}");
    assert_eq!(crossmint_order.body["provider"], "crossmint");
    assert_eq!(crossmint_order.body["currency"], "USDT");
    assert!(crossmint_order.body["clientSecret"].is_string());
    assert_eq!(
        crossmint.requests().len(),
        1,
        "the refused key called nobody"
    );

    // Confirm says pending, for the Stripe order, in its currency.
    let confirm = api
        .post(
            "/api/payments/confirm",
            Some("buyer-1"),
            &json!({"orderId": session_id}),
        )
        .await;
    assert_eq!(confirm.status, 200, "{confirm:?}");
    assert_eq!(confirm.body["status"], "pending");
    assert_eq!(confirm.body["success"], false);
    assert_eq!(confirm.body["provider"], "stripe");
    assert_eq!(confirm.body["currency"], "USD");

    // History lists both providers' orders, each with its own.
    let history = api.get("/api/payments/history", Some("buyer-1")).await;
    assert_eq!(history.status, 200, "{history:?}");
    let orders = history.body["orders"].as_array().unwrap();
    let listed: Vec<(&str, &str, &str)> = orders
        .iter()
        .map(|o| {
            (
                o["orderId"].as_str().unwrap(),
                o["provider"].as_str().unwrap(),
                o["currency"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed.len(), 3, "{history:?}");
    assert!(listed.contains(&(session_id.as_str(), "stripe", "USD")));
    assert!(
        listed
            .iter()
            .any(|(_, p, c)| (*p, *c) == ("crossmint", "USDT"))
    );

    // Counted by provider; a replay is no new order.
    let page = api.service.metrics().await;
    let created = |provider: &str| {
        metric(
            &page,
            "ledgerhook_api_orders_created_total",
            &[&format!("provider=\"{provider}\"")],
        )
    };
    assert_eq!(
        (created("stripe"), created("crossmint")),
        (2.0, 1.0),
        "{page}"
    );
    assert!(!api.service.log().contains(FAKE_SECRET_KEY));
}

#[tokio::test]
async fn a_failing_stripe_a_missing_key_and_an_unknown_provider_are_refused_and_counted() {
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let stripe = FakeStripe::start().await.unwrap();
    let api = api_with_stripe(&env, &crossmint, &stripe, &[("STRIPE_TIMEOUT_MS", "500")]).await;
    let without_stripe = env.start_api(&crossmint.api_url, &[]).await.unwrap();

    // Stripe failing or hanging: 502 STRIPE_ERROR, nothing recorded, the
    // key freed for a retry, and no secret or address in the answer.
    for behaviour in [Behaviour::Fail, Behaviour::Hang] {
        stripe.behave(behaviour);
        let answer = stripe_order(&api, "buyer", Some("retry-me"), "vip").await;
        assert_eq!(answer.status, 502, "{behaviour:?}: {answer:?}");
        assert_eq!(answer.body["code"], "STRIPE_ERROR");
        let text = answer.body.to_string();
        assert!(
            !text.contains("127.0.0.1") && !text.contains("sk_test"),
            "{text}"
        );
    }
    assert_eq!(env.count("select count(*) from payment_orders").await, 0);
    assert!(
        api.service.log().contains("Stripe call failed") && !api.service.log().contains("sk_test"),
        "the failure is logged, the key never: {}",
        api.service.log()
    );
    let page = api.service.metrics().await;
    let failures = |reason: &str| {
        metric(
            &page,
            "ledgerhook_stripe_failures_total",
            &[&format!("reason=\"{reason}\"")],
        )
    };
    assert_eq!(
        (failures("api_error"), failures("timeout")),
        (1.0, 1.0),
        "{page}"
    );
    stripe.behave(Behaviour::Answer);
    let retried = stripe_order(&api, "buyer", Some("retry-me"), "vip").await;
    assert_eq!(
        retried.status, 201,
        "the failed request freed its key: {retried:?}"
    );
    assert_eq!(
        stripe.requests()[2].field("line_items[0][price_data][unit_amount]"),
        Some("10000")
    );

    // No STRIPE_SECRET_KEY: 422 PROVIDER_UNAVAILABLE, counted, nothing made.
    let unavailable = stripe_order(&without_stripe, "buyer", None, "pro").await;
    assert_eq!(unavailable.status, 422, "{unavailable:?}");
    assert_eq!(unavailable.body["code"], "PROVIDER_UNAVAILABLE");
    assert_eq!(unavailable.body["details"]["provider"], "stripe");
    let page = without_stripe.service.metrics().await;
    assert_eq!(
        metric(
            &page,
            "ledgerhook_api_provider_unavailable_total",
            &["provider=\"stripe\""]
        ),
        1.0,
        "{page}"
    );

    // A Stripe-only API (no CROSSMINT_SERVER_API_KEY) starts, and answers
    // a Crossmint order the same way, Crossmint never called.
    let stripe_only = api_with_stripe(
        &env,
        &crossmint,
        &stripe,
        &[("CROSSMINT_SERVER_API_KEY", "")],
    )
    .await;
    let calls = crossmint.requests().len();
    let no_crossmint = stripe_only
        .post(ORDERS, Some("buyer"), &json!({"packageId": "pro"}))
        .await;
    assert_eq!(no_crossmint.status, 422, "{no_crossmint:?}");
    assert_eq!(no_crossmint.body["details"]["provider"], "crossmint");
    assert_eq!(crossmint.requests().len(), calls);

    // An unknown provider: 400 INVALID_PROVIDER naming it, nobody called.
    let before = (stripe.requests().len(), crossmint.requests().len());
    let unknown = api
        .post(
            ORDERS,
            Some("buyer"),
            &json!({"packageId": "pro", "provider": "paypal"}),
        )
        .await;
    assert_eq!(unknown.status, 400, "{unknown:?}");
    assert_eq!(unknown.body["code"], "INVALID_PROVIDER");
    assert_eq!(unknown.body["details"]["provider"], "paypal");
    assert_eq!(
        (stripe.requests().len(), crossmint.requests().len()),
        before
    );
    assert_eq!(
        env.count("select count(*) from payment_orders").await,
        1,
        "only the retried order"
    );
}

/// What a webhook receiver got: the `Stripe-Signature` header and the body.
type Received = Arc<Mutex<Vec<(String, Bytes)>>>;

async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let app = Router::new().route(
        "/webhooks/stripe",
        post({
            let received = received.clone();
            move |headers: HeaderMap, body: Bytes| async move {
                let signature = headers["stripe-signature"].to_str().unwrap().to_owned();
                received.lock().unwrap().push((signature, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/stripe", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

#[tokio::test]
async fn the_fake_stripe_pays_refunds_and_disputes_with_signed_events() {
    let stripe = FakeStripe::start().await.unwrap();
    let (url, received) = receiver().await;
    let secret = "whsec_test_only";
    stripe.send_events_to(&url, secret);
    let created: Value = reqwest::Client::new()
        .post(format!("{}/v1/checkout/sessions", stripe.api_url))
        .bearer_auth(FAKE_SECRET_KEY)
        .form(&[
            ("mode", "payment"),
            ("line_items[0][price_data][currency]", "usd"),
            ("line_items[0][price_data][unit_amount]", "1000"),
            ("line_items[0][price_data][product_data][name]", "Starter"),
            ("line_items[0][quantity]", "1"),
            ("success_url", SUCCESS_URL),
            ("metadata[userId]", "buyer"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["payment_status"], "unpaid");
    assert_eq!(created["amount_total"], 1000);

    // Opening the session's page pays it, as a buyer would.
    let page = reqwest::get(created["url"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(stripe.refund(id, 400).await.unwrap(), 200);
    assert_eq!(stripe.refund(id, 600).await.unwrap(), 200);
    assert_eq!(stripe.dispute(id).await.unwrap(), 200);

    let events: Vec<Value> = received
        .lock()
        .unwrap()
        .iter()
        .map(|(signature, body)| {
            let event: Value = serde_json::from_slice(body).unwrap();
            let created = event["created"].as_i64().unwrap();
            assert_eq!(
                signature,
                &sign(secret, created, body),
                "signed as Stripe signs"
            );
            event
        })
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "checkout.session.completed",
            "charge.refunded",
            "charge.refunded",
            "charge.dispute.created"
        ]
    );
    let session = &events[0]["data"]["object"];
    assert_eq!(session["id"], id);
    assert_eq!(session["payment_status"], "paid");
    assert_eq!(session["metadata"]["userId"], "buyer");
    let intent = session["payment_intent"].as_str().unwrap();
    assert!(intent.starts_with("pi_"));
    let refunds: Vec<(i64, bool)> = events[1..3]
        .iter()
        .map(|e| {
            let charge = &e["data"]["object"];
            assert_eq!(charge["payment_intent"], intent);
            (
                charge["amount_refunded"].as_i64().unwrap(),
                charge["refunded"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        refunds,
        [(400, false), (1000, true)],
        "cumulative, as Stripe"
    );
    assert_eq!(events[3]["data"]["object"]["payment_intent"], intent);
}
