//! Stripe payments through the whole pipeline: signed events from the
//! example payloads (tests/payloads/stripe) to the ingester, the worker's
//! state machine and the ledger. A Checkout Session and its invoice grant
//! once; refunds and a dispute take back their share, never below zero,
//! with the shortfall on the order; a storm of one payment under both
//! event names grants once across two workers.

use std::time::Duration;

use ledgerhook_domain::PaymentProvider;
use ledgerhook_store::credits::{self, Spend, SpendOutcome};
use ledgerhook_tests::harness::{Answer, Ingester, TestEnv};
use ledgerhook_tests::scrape;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// An example event from tests/payloads/stripe, with a fresh event id.
fn example(name: &str) -> Value {
    let path = format!("{}/payloads/stripe/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let mut event: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    event["id"] = json!(format!("evt_{}", uuid::Uuid::new_v4().simple()));
    event
}

/// A paid Checkout Session for `package` at `cents`, by `user`.
fn checkout(session: &str, intent: &str, user: &str, package: &str, cents: i64) -> Value {
    let mut event = example("checkout.session.completed");
    let object = &mut event["data"]["object"];
    object["id"] = json!(session);
    object["payment_intent"] = json!(intent);
    object["client_reference_id"] = json!(user);
    object["metadata"] = json!({"userId": user, "packageId": package});
    object["amount_total"] = json!(cents);
    event
}

/// `invoice.paid` announcing the same payment.
fn invoice(invoice_id: &str, intent: &str, user: &str, package: &str, cents: i64) -> Value {
    let mut event = example("invoice.paid");
    let object = &mut event["data"]["object"];
    object["id"] = json!(invoice_id);
    object["metadata"] = json!({"userId": user, "packageId": package});
    object["amount_paid"] = json!(cents);
    object["payments"]["data"][0]["payment"]["payment_intent"] = json!(intent);
    event
}

/// `charge.refunded` with the charge's refunded total so far.
fn refunded(intent: &str, refunded_cents: i64) -> Value {
    let mut event = example("charge.refunded");
    let object = &mut event["data"]["object"];
    object["id"] = json!(format!("ch_{intent}"));
    object["payment_intent"] = json!(intent);
    object["amount_refunded"] = json!(refunded_cents);
    event
}

fn disputed(dispute: &str, intent: &str, cents: i64) -> Value {
    let mut event = example("charge.dispute.created");
    let object = &mut event["data"]["object"];
    object["id"] = json!(dispute);
    object["payment_intent"] = json!(intent);
    object["amount"] = json!(cents);
    event
}

/// Posts `event` to /webhooks/stripe, signed as Stripe signs.
async fn send(ingester: &Ingester, event: &Value) -> Answer {
    ingester.send_stripe(event).await
}

/// Sends `event`, expects it accepted, and waits for its outcome.
async fn deliver(env: &TestEnv, ingester: &Ingester, event: &Value) -> (String, Option<String>) {
    let answer = send(ingester, event).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body["status"], "accepted", "{answer:?}");
    let id = event["id"].as_str().unwrap();
    env.wait_for_count(
        &format!(
            "select count(*) from webhook_deliveries
             where delivery_id = '{id}' and provider = 'stripe' and processed_at is not null"
        ),
        1,
        WAIT,
    )
    .await;
    sqlx::query_as(
        "select outcome, outcome_detail from webhook_deliveries
         where delivery_id = $1 and provider = 'stripe'",
    )
    .bind(id)
    .fetch_one(&env.pool)
    .await
    .unwrap()
}

async fn spend(env: &TestEnv, user: &str, amount: i64) {
    let outcome = credits::spend(
        &env.pool,
        Spend {
            user_id: user,
            credits: amount,
            description: Some("test spend"),
            idempotency_key: &uuid::Uuid::new_v4().to_string(),
            api_key: None,
        },
    )
    .await
    .unwrap();
    assert!(matches!(outcome, SpendOutcome::Spent { .. }), "{outcome:?}");
}

async fn order_row(
    env: &TestEnv,
    order: &str,
) -> (String, Option<String>, Option<i64>, Option<i64>) {
    sqlx::query_as(
        "select status, payment_intent, revoked_credits, revoke_shortfall
         from payment_orders where provider_order_id = $1",
    )
    .bind(order)
    .fetch_one(&env.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn checkout_and_its_invoice_grant_once_and_refunds_and_disputes_take_back_their_share() {
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let worker = env.start_worker(&[]).await.unwrap();

    // The API recorded the session's order before the buyer paid.
    env.create_provider_order(PaymentProvider::Stripe, "cs_test_pro", "user-a", "pro")
        .await;
    let paid = checkout("cs_test_pro", "pi_pro", "user-a", "pro", 5000);
    assert_eq!(deliver(&env, &ingester, &paid).await.0, "granted");
    assert_eq!(env.balance("user-a").await, 3300);
    let (status, intent, _, _) = order_row(&env, "cs_test_pro").await;
    assert_eq!(
        (status.as_str(), intent.as_deref()),
        ("completed", Some("pi_pro"))
    );

    // The invoice for the same payment is the same order: a duplicate, and
    // no second order is made from its metadata.
    let same_payment = invoice("in_pro", "pi_pro", "user-a", "pro", 5000);
    assert_eq!(deliver(&env, &ingester, &same_payment).await.0, "duplicate");
    assert_eq!(env.balance("user-a").await, 3300);
    assert_eq!(env.count("select count(*) from payment_orders").await, 1);

    // The same event resent by Stripe is recorded once.
    let again = send(&ingester, &paid).await;
    assert_eq!(again.body["status"], "duplicate", "{again:?}");

    // 2000 spent; then half the payment refunded: 1650 credits asked, 1300
    // there to take, 350 short. Never below zero.
    spend(&env, "user-a", 2000).await;
    let (outcome, detail) = deliver(&env, &ingester, &refunded("pi_pro", 2500)).await;
    assert_eq!(outcome, "reversed");
    assert_eq!(
        detail.as_deref(),
        Some("refund: 1300 credits taken back, 350 short")
    );
    assert_eq!(env.balance("user-a").await, 0);
    // The same refunded total reported again takes nothing more.
    let (outcome, _) = deliver(&env, &ingester, &refunded("pi_pro", 2500)).await;
    assert_eq!(outcome, "ignored");
    // The rest refunded: the other 1650, all of it short.
    let (outcome, detail) = deliver(&env, &ingester, &refunded("pi_pro", 5000)).await;
    assert_eq!(outcome, "reversed");
    assert_eq!(
        detail.as_deref(),
        Some("refund: 0 credits taken back, 1650 short")
    );
    // A smaller total arriving late asks for nothing and writes nothing.
    let (outcome, _) = deliver(&env, &ingester, &refunded("pi_pro", 2000)).await;
    assert_eq!(outcome, "ignored");
    let (_, _, taken, short) = order_row(&env, "cs_test_pro").await;
    assert_eq!((taken, short), (Some(1300), Some(2000)));
    assert_eq!(
        env.count("select count(*) from credit_ledger where kind = 'refund'")
            .await,
        2
    );

    // A Checkout Session no API call recorded (a payment link): the order
    // comes from its metadata. A dispute of it takes the whole 500 back,
    // once, whatever the number of events.
    env.create_provider_order(PaymentProvider::Stripe, "cs_test_other", "user-b", "pro")
        .await;
    let starter = checkout("cs_test_link", "pi_link", "user-b", "starter", 1000);
    assert_eq!(deliver(&env, &ingester, &starter).await.0, "granted");
    assert_eq!(env.balance("user-b").await, 500);
    // An inquiry withdraws no money and takes nothing.
    let mut inquiry = disputed("dp_inquiry", "pi_link", 1000);
    inquiry["data"]["object"]["status"] = json!("warning_needs_response");
    assert_eq!(deliver(&env, &ingester, &inquiry).await.0, "ignored");
    assert_eq!(env.balance("user-b").await, 500);
    let dispute = disputed("dp_link", "pi_link", 1000);
    let (outcome, detail) = deliver(&env, &ingester, &dispute).await;
    assert_eq!(outcome, "reversed");
    assert_eq!(
        detail.as_deref(),
        Some("chargeback: 500 credits taken back, 0 short")
    );
    let mut resent = dispute.clone();
    resent["id"] = json!("evt_dispute_resent");
    assert_eq!(deliver(&env, &ingester, &resent).await.0, "ignored");
    assert_eq!(env.balance("user-b").await, 0);

    // An invoice whose first attempt failed and which was then paid:
    // recorded failed, and money received wins.
    let mut failed = example("invoice.payment_failed");
    failed["data"]["object"]["id"] = json!("in_retry");
    failed["data"]["object"]["metadata"] = json!({"userId": "user-c", "packageId": "starter"});
    assert_eq!(deliver(&env, &ingester, &failed).await.0, "recorded");
    assert_eq!(order_row(&env, "in_retry").await.0, "failed");
    let retried = invoice("in_retry", "pi_retry", "user-c", "starter", 1000);
    let (outcome, detail) = deliver(&env, &ingester, &retried).await;
    assert_eq!(outcome, "granted");
    assert!(detail.unwrap().contains("after it had failed"));
    assert_eq!(env.balance("user-c").await, 500);

    // Event types we do not act on are recorded and acknowledged.
    let customer = example("customer.created");
    assert_eq!(deliver(&env, &ingester, &customer).await.0, "ignored");

    // A wrong amount on a Stripe order is held for review, as for Crossmint.
    let short = checkout("cs_test_other", "pi_other", "user-b", "pro", 4999);
    assert_eq!(deliver(&env, &ingester, &short).await.0, "conflict");
    assert_eq!(env.balance("user-b").await, 0);
    // The money was received all the same: the order keeps its payment, so
    // a refund of it finds the order (and, nothing granted, takes nothing).
    assert_eq!(
        order_row(&env, "cs_test_other").await.1.as_deref(),
        Some("pi_other")
    );
    let (outcome, detail) = deliver(&env, &ingester, &refunded("pi_other", 4999)).await;
    assert_eq!(
        (outcome.as_str(), detail.as_deref()),
        ("ignored", Some("reversal of an order that granted nothing"))
    );

    let metrics = worker.metrics().await;
    let count = |name: &str, labels: &[&str]| scrape::sum(&metrics, name, labels);
    assert_eq!(
        count("ledgerhook_grants_total", &["provider=\"stripe\""]),
        3.0
    );
    assert_eq!(
        count(
            "ledgerhook_duplicate_orders_total",
            &["provider=\"stripe\""]
        ),
        1.0
    );
    // One order refunded (in two parts, and once more reported again):
    // the refund rate counts orders.
    assert_eq!(
        count(
            "ledgerhook_payment_reversals_total",
            &["provider=\"stripe\"", "kind=\"refund\""]
        ),
        1.0
    );
    assert_eq!(
        count(
            "ledgerhook_payment_reversals_total",
            &["kind=\"chargeback\""]
        ),
        1.0
    );
    assert_eq!(
        count(
            "ledgerhook_reversed_credits_total",
            &["kind=\"refund\"", "part=\"shortfall\""]
        ),
        2000.0
    );
}

/// One payment, announced as `checkout.session.completed` and as
/// `invoice.paid`, each under many event ids and the first event five times
/// over, all at once, to two workers taking small batches: one grant, one
/// order, every other delivery a counted duplicate.
#[tokio::test]
async fn a_storm_of_one_payment_under_checkout_and_invoice_grants_once() {
    const COPIES: usize = 10;
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let small = [("WORKER_BATCH_SIZE", "4"), ("WORKER_CONCURRENCY", "2")];
    let workers = [
        env.start_worker(&small).await.unwrap(),
        env.start_worker(&small).await.unwrap(),
    ];

    let first = checkout("cs_test_storm", "pi_storm", "user-s", "vip", 10_000);
    let mut events = vec![first.clone(); 5];
    for _ in 0..COPIES {
        let mut session = first.clone();
        session["id"] = json!(format!("evt_{}", uuid::Uuid::new_v4().simple()));
        events.push(session);
        events.push(invoice("in_storm", "pi_storm", "user-s", "vip", 10_000));
    }
    let answers =
        futures_util::future::join_all(events.iter().map(|event| send(&ingester, event))).await;
    assert!(answers.iter().all(|a| a.status == 200), "{answers:?}");
    let deliveries = 1 + 2 * COPIES as i64;
    assert_eq!(
        answers
            .iter()
            .filter(|a| a.body["status"] == "accepted")
            .count() as i64,
        deliveries,
        "the first event's four resends are the ingester's duplicates"
    );

    env.wait_all_processed(deliveries, WAIT).await;
    assert_eq!(env.balance("user-s").await, 9600);
    assert_eq!(
        env.count("select count(*) from credit_ledger where kind = 'purchase_grant'")
            .await,
        1
    );
    assert_eq!(
        env.count("select count(*) from payment_orders where status = 'completed'")
            .await,
        1
    );
    assert_eq!(
        env.count("select count(*) from payment_orders").await,
        1,
        "no second order for the same payment"
    );
    assert_eq!(
        env.count("select count(*) from webhook_deliveries where outcome = 'duplicate'")
            .await,
        deliveries - 1
    );
    let mut duplicates = 0.0;
    for worker in &workers {
        duplicates += worker
            .metric(
                "ledgerhook_duplicate_orders_total",
                &["provider=\"stripe\""],
            )
            .await;
    }
    assert_eq!(duplicates, (deliveries - 1) as f64);
}

/// The whole card path as a buyer meets it: the API creates a Checkout
/// Session at the fake Stripe and records the order; the buyer opens the
/// hosted page (the fake pays and sends Stripe's signed event to the
/// ingester); confirm, balance and history then say what they say for a
/// Crossmint order. A refund of part of it comes back the same way.
#[tokio::test]
async fn a_card_order_from_the_api_is_paid_confirmed_and_partly_refunded() {
    use ledgerhook_tests::fake_crossmint::FakeCrossmint;
    use ledgerhook_tests::fake_stripe::{FAKE_SECRET_KEY, FAKE_WEBHOOK_SECRET, FakeStripe};

    let env = TestEnv::new().await.unwrap();
    let ingester = env
        .start_ingester(&[("STRIPE_WEBHOOK_SECRET", FAKE_WEBHOOK_SECRET)])
        .await
        .unwrap();
    let _worker = env.start_worker(&[]).await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let stripe = FakeStripe::start().await.unwrap();
    stripe.send_events_to(
        &format!("{}/webhooks/stripe", ingester.base),
        FAKE_WEBHOOK_SECRET,
    );
    let api = env
        .start_api(
            &crossmint.api_url,
            &[
                ("STRIPE_API_URL", stripe.api_url.as_str()),
                ("STRIPE_SECRET_KEY", FAKE_SECRET_KEY),
                ("STRIPE_SUCCESS_URL", "https://shop.example/paid"),
                ("STRIPE_CANCEL_URL", "https://shop.example/cancelled"),
            ],
        )
        .await
        .unwrap();

    let created = api
        .post(
            "/api/payments/orders",
            Some("card-buyer"),
            &json!({"packageId": "vip", "provider": "stripe"}),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let order = created.body["orderId"].as_str().unwrap().to_owned();
    let confirm = json!({"orderId": order});
    let pending = api
        .post("/api/payments/confirm", Some("card-buyer"), &confirm)
        .await;
    assert_eq!(pending.body["status"], "pending", "{pending:?}");

    // The buyer pays on the hosted page.
    let page = reqwest::get(created.body["checkoutUrl"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    env.wait_for_count(
        "select count(*) from webhook_deliveries where outcome = 'granted'",
        1,
        WAIT,
    )
    .await;
    let confirmed = api
        .post("/api/payments/confirm", Some("card-buyer"), &confirm)
        .await;
    assert_eq!(confirmed.body["success"], true, "{confirmed:?}");
    assert_eq!(confirmed.body["creditsAdded"], 9600);
    assert_eq!(confirmed.body["provider"], "stripe");
    assert_eq!(env.balance("card-buyer").await, 9600);

    // A quarter refunded: 2400 credits back, nothing short.
    assert_eq!(stripe.refund(&order, 2500).await.unwrap(), 200);
    env.wait_for_count(
        "select count(*) from webhook_deliveries where outcome = 'reversed'",
        1,
        WAIT,
    )
    .await;
    assert_eq!(env.balance("card-buyer").await, 7200);
    let history = api.get("/api/payments/history", Some("card-buyer")).await;
    assert_eq!(history.status, 200, "{history:?}");
    // The refund shows on the order and in the statistics.
    let card = &history.body["orders"][0];
    assert_eq!(card["provider"], "stripe");
    assert_eq!(
        card["takenBack"],
        json!({"refunded": 2400, "chargedBack": 0, "revoked": 0, "shortfall": 0})
    );
    let stats = &history.body["statistics"];
    assert_eq!(stats["refundedOrders"], 1, "{stats}");
    assert_eq!(stats["creditsTakenBack"], 2400);
    assert_eq!(stats["totalSpent"], "100.000000", "one currency: its total");

    // A USDT order beside it: totals per currency, never USD and USDT added.
    let buy_crossmint = api
        .post(
            "/api/payments/orders",
            Some("card-buyer"),
            &json!({"packageId": "starter"}),
        )
        .await;
    assert_eq!(buy_crossmint.status, 201, "{buy_crossmint:?}");
    let usdt_order = buy_crossmint.body["orderId"].as_str().unwrap();
    let paid =
        ledgerhook_tests::webhook::payment_succeeded(usdt_order, "card-buyer", "starter", "10");
    assert_eq!(ingester.send(&paid).await.status, 200);
    env.wait_for_count(
        "select count(*) from webhook_deliveries where outcome = 'granted'",
        2,
        WAIT,
    )
    .await;
    let history = api.get("/api/payments/history", Some("card-buyer")).await;
    let stats = &history.body["statistics"];
    assert_eq!(stats["totalSpent"], Value::Null, "{stats}");
    assert_eq!(stats["averageOrderValue"], Value::Null);
    assert_eq!(
        stats["totalSpentByCurrency"],
        json!({"USD": "100.000000", "USDT": "10.000000"})
    );
    assert_eq!(
        stats["averageOrderValueByCurrency"],
        json!({"USD": "100.000000", "USDT": "10.000000"})
    );
}
