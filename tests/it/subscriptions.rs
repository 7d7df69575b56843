//! Stripe subscriptions (design document 003): each paid period's invoice
//! grants its plan's credits once, valid until the period ends plus the
//! grace, whatever the order and number of events; a failed renewal grants
//! nothing; a proration grants nothing; a refund takes back its share.
//! Every event is signed by Stripe's own Python library, in the shapes of
//! Stripe's current API version (basil and later: the subscription's
//! metadata under `parent.subscription_details`).

use std::path::PathBuf;
use std::time::Duration;

use ledgerhook_tests::harness::{Ingester, TestEnv};
use ledgerhook_tests::stripe_python::{signature_by_stripe, stripe_python};
use ledgerhook_tests::stripe_webhook::STRIPE_TEST_SECRET;
use ledgerhook_tests::webhook::now_secs;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);
const DAY: i64 = 24 * 3600;

/// Stripe's shape of a subscription's invoice event (see
/// `tests/payloads/stripe/invoice.paid.subscription.json`).
fn invoice_event(
    event_type: &str,
    invoice: &str,
    reason: &str,
    (plan, cents): (&str, i64),
    period: (i64, i64),
    intent: &str,
) -> Value {
    let path = format!(
        "{}/payloads/stripe/invoice.paid.subscription.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut event: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    event["id"] = json!(format!("evt_{}", uuid::Uuid::new_v4().simple()));
    event["type"] = json!(event_type);
    let object = &mut event["data"]["object"];
    object["id"] = json!(invoice);
    object["billing_reason"] = json!(reason);
    object["amount_paid"] = json!(if event_type == "invoice.payment_failed" {
        0
    } else {
        cents
    });
    object["amount_due"] = json!(cents);
    object["total"] = json!(cents);
    object["parent"]["subscription_details"]["metadata"] =
        json!({"planId": plan, "userId": "subscriber-1"});
    object["parent"]["subscription_details"]["subscription"] = json!("sub_test_1");
    object["lines"]["data"][0]["amount"] = json!(cents);
    object["lines"]["data"][0]["period"] = json!({"start": period.0, "end": period.1});
    object["payments"]["data"][0]["payment"]["payment_intent"] = json!(intent);
    object["payments"]["data"][0]["amount_paid"] = json!(cents);
    event
}

/// Stripe's `charge.refunded` for the charge of `payment_intent`, of
/// `amount` cents, `refunded` of them refunded so far.
fn refunded(payment_intent: &str, amount: i64, refunded: i64) -> Value {
    let path = format!(
        "{}/payloads/stripe/charge.refunded.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut event: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    event["id"] = json!(format!("evt_{}", uuid::Uuid::new_v4().simple()));
    let charge = &mut event["data"]["object"];
    charge["payment_intent"] = json!(payment_intent);
    charge["amount"] = json!(amount);
    charge["amount_captured"] = json!(amount);
    charge["amount_refunded"] = json!(refunded);
    charge["refunded"] = json!(refunded >= amount);
    charge["currency"] = json!("usd");
    event
}

struct Stripe {
    python: PathBuf,
}

impl Stripe {
    /// Sends `event` signed by Stripe's library; waits for its outcome.
    async fn deliver(&self, env: &TestEnv, ingester: &Ingester, event: &Value) -> String {
        let body = serde_json::to_vec(event).unwrap();
        let python = self.python.clone();
        let signed = body.clone();
        let signature = tokio::task::spawn_blocking(move || {
            signature_by_stripe(&python, STRIPE_TEST_SECRET, now_secs(), &signed)
        })
        .await
        .unwrap();
        let answer = ingester
            .send_stripe_raw(&[("stripe-signature", signature)], body)
            .await;
        assert_eq!(answer.status, 200, "{answer:?}");
        let id = event["id"].as_str().unwrap();
        env.wait_for_count(
            &format!(
                "select count(*) from webhook_deliveries
                 where delivery_id = '{id}' and processed_at is not null"
            ),
            1,
            WAIT,
        )
        .await;
        sqlx::query_scalar("select outcome from webhook_deliveries where delivery_id = $1")
            .bind(id)
            .fetch_one(&env.pool)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn each_paid_period_grants_its_plan_once_for_the_period_and_the_grace() {
    let python = tokio::task::spawn_blocking(stripe_python);
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let _worker = env
        .start_worker(&[("SUBSCRIPTION_GRACE_DAYS", "2")])
        .await
        .unwrap();
    let stripe = Stripe {
        python: python.await.unwrap(),
    };
    let start = now_secs();
    let first = (start, start + 30 * DAY);
    let second = (first.1, first.1 + 31 * DAY);
    let monthly = ("monthly", 2000);

    // The first period, announced twice (Stripe sends both names).
    let paid = invoice_event(
        "invoice.paid",
        "in_sub_1",
        "subscription_create",
        monthly,
        first,
        "pi_sub_1",
    );
    assert_eq!(stripe.deliver(&env, &ingester, &paid).await, "granted");
    let mut again = paid.clone();
    again["id"] = json!(format!("evt_{}", uuid::Uuid::new_v4().simple()));
    again["type"] = json!("invoice.payment_succeeded");
    assert_eq!(stripe.deliver(&env, &ingester, &again).await, "duplicate");
    assert_eq!(env.balance("subscriber-1").await, 1200);
    let (subscription, expires): (Option<String>, i64) = sqlx::query_as(
        "select o.subscription_id, extract(epoch from l.expires_at)::int8
         from payment_orders o join credit_ledger l on l.order_id = o.id
         where o.provider_order_id = 'in_sub_1'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(subscription.as_deref(), Some("sub_test_1"));
    assert_eq!(expires, first.1 + 2 * DAY, "the period's end and the grace");

    // A proration when the plan changes mid-period grants nothing: the new
    // plan takes effect at the renewal.
    let proration = invoice_event(
        "invoice.paid",
        "in_sub_proration",
        "subscription_update",
        ("yearly", 16400),
        first,
        "pi_sub_proration",
    );
    assert_eq!(
        stripe.deliver(&env, &ingester, &proration).await,
        "recorded"
    );
    // The renewal, on the yearly plan now: its own period, its own credits.
    let renewal = invoice_event(
        "invoice.paid",
        "in_sub_2",
        "subscription_cycle",
        ("yearly", 20000),
        second,
        "pi_sub_2",
    );
    assert_eq!(stripe.deliver(&env, &ingester, &renewal).await, "granted");
    assert_eq!(env.balance("subscriber-1").await, 1200 + 16000);

    // A renewal whose payment failed grants nothing.
    let failed = invoice_event(
        "invoice.payment_failed",
        "in_sub_3",
        "subscription_cycle",
        monthly,
        (second.1, second.1 + 30 * DAY),
        "pi_sub_3",
    );
    assert_eq!(stripe.deliver(&env, &ingester, &failed).await, "recorded");
    let status: String = sqlx::query_scalar(
        "select status from payment_orders where provider_order_id = 'in_sub_3'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(status, "failed");
    // A wrong amount for the plan is held, as for any order.
    let short = invoice_event(
        "invoice.paid",
        "in_sub_4",
        "subscription_cycle",
        ("monthly", 1000),
        (second.1, second.1 + 30 * DAY),
        "pi_sub_4",
    );
    assert_eq!(stripe.deliver(&env, &ingester, &short).await, "conflict");

    // Half of the first period refunded: half its credits taken back.
    let refund = refunded("pi_sub_1", 2000, 1000);
    assert_eq!(stripe.deliver(&env, &ingester, &refund).await, "reversed");
    assert_eq!(env.balance("subscriber-1").await, 600 + 16000);
    assert_eq!(
        env.count("select count(*) from credit_ledger where kind = 'purchase_grant'")
            .await,
        2
    );
}

/// Stripe's shape of a subscription event (see
/// `tests/payloads/stripe/customer.subscription.updated.json`).
fn subscription_event(event_type: &str, status: &str, created: i64, period: (i64, i64)) -> Value {
    let path = format!(
        "{}/payloads/stripe/customer.subscription.updated.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut event: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    event["id"] = json!(format!("evt_{}", uuid::Uuid::new_v4().simple()));
    event["type"] = json!(event_type);
    event["created"] = json!(created);
    let object = &mut event["data"]["object"];
    object["id"] = json!("sub_test_2");
    object["status"] = json!(status);
    object["metadata"] = json!({"planId": "monthly", "userId": "subscriber-2"});
    object["items"]["data"][0]["current_period_start"] = json!(period.0);
    object["items"]["data"][0]["current_period_end"] = json!(period.1);
    if status == "canceled" {
        object["canceled_at"] = json!(created);
    }
    event
}

#[tokio::test]
async fn a_subscriptions_state_follows_its_newest_event_and_an_ended_one_grants_nothing() {
    let python = tokio::task::spawn_blocking(stripe_python);
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let _worker = env.start_worker(&[]).await.unwrap();
    let stripe = Stripe {
        python: python.await.unwrap(),
    };
    let start = now_secs();
    let period = (start, start + 30 * DAY);
    let state = async || -> (String, Option<i64>, Option<String>) {
        sqlx::query_as(
            "select status, extract(epoch from current_period_end)::int8, customer_id
             from subscriptions where id = 'sub_test_2'",
        )
        .fetch_one(&env.pool)
        .await
        .unwrap()
    };

    let created = subscription_event("customer.subscription.created", "active", start, period);
    assert_eq!(stripe.deliver(&env, &ingester, &created).await, "recorded");
    assert_eq!(
        state().await,
        (
            "active".into(),
            Some(period.1),
            Some("cus_QxLedgerhookSubscriber01".into())
        )
    );
    // A renewal whose payment failed makes it past due at once.
    let mut failed = invoice_event(
        "invoice.payment_failed",
        "in_sub2_failed",
        "subscription_cycle",
        ("monthly", 2000),
        period,
        "pi_sub2_failed",
    );
    failed["data"]["object"]["parent"]["subscription_details"]["subscription"] =
        json!("sub_test_2");
    failed["data"]["object"]["parent"]["subscription_details"]["metadata"]["userId"] =
        json!("subscriber-2");
    assert_eq!(stripe.deliver(&env, &ingester, &failed).await, "recorded");
    assert_eq!(state().await.0, "past_due", "marked by the failed invoice");
    let past_due = subscription_event(
        "customer.subscription.updated",
        "past_due",
        start + 20,
        period,
    );
    assert_eq!(stripe.deliver(&env, &ingester, &past_due).await, "recorded");
    // An older change, arriving late, changes nothing.
    let stale = subscription_event(
        "customer.subscription.updated",
        "active",
        start + 10,
        period,
    );
    assert_eq!(stripe.deliver(&env, &ingester, &stale).await, "recorded");
    assert_eq!(state().await.0, "past_due");

    let deleted = subscription_event(
        "customer.subscription.deleted",
        "canceled",
        start + 30,
        period,
    );
    assert_eq!(stripe.deliver(&env, &ingester, &deleted).await, "recorded");
    assert_eq!(state().await.0, "canceled");
    // A payment for it after that is held for a person, not granted.
    let mut late = invoice_event(
        "invoice.paid",
        "in_after_end",
        "subscription_cycle",
        ("monthly", 2000),
        (period.1, period.1 + 30 * DAY),
        "pi_after_end",
    );
    late["data"]["object"]["parent"]["subscription_details"]["subscription"] = json!("sub_test_2");
    late["data"]["object"]["parent"]["subscription_details"]["metadata"]["userId"] =
        json!("subscriber-2");
    assert_eq!(stripe.deliver(&env, &ingester, &late).await, "conflict");
    assert_eq!(env.balance("subscriber-2").await, 0);
}

#[tokio::test]
async fn a_user_subscribes_through_the_api_is_granted_each_period_and_can_open_the_portal() {
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
    stripe.send_events_to(&ingester.stripe_url(), FAKE_WEBHOOK_SECRET);
    let api = env
        .start_api(
            &crossmint.api_url,
            &[
                ("STRIPE_API_URL", stripe.api_url.as_str()),
                ("STRIPE_SECRET_KEY", FAKE_SECRET_KEY),
                ("STRIPE_SUCCESS_URL", "https://shop.example/paid"),
                ("STRIPE_CANCEL_URL", "https://shop.example/account"),
            ],
        )
        .await
        .unwrap();

    let plans = api.get("/api/payments/plans", None).await;
    assert_eq!(plans.status, 200, "{plans:?}");
    assert_eq!(
        plans.body["plans"][0],
        json!({"id": "monthly", "name": "Monthly", "interval": "month", "price": "20.000000",
               "currency": "USD", "creditsPerPeriod": 1200, "badge": null})
    );
    let unknown = api
        .post(
            "/api/payments/subscriptions",
            Some("fan"),
            &json!({"planId": "weekly"}),
        )
        .await;
    assert_eq!(
        (unknown.status, unknown.body["code"].clone()),
        (400, json!("INVALID_PLAN"))
    );

    let subscribe = async || {
        api.post_with_headers(
            "/api/payments/subscriptions",
            "fan",
            &[("Idempotency-Key", "fan-sub-1")],
            &json!({"planId": "monthly"}),
        )
        .await
    };
    let created = subscribe().await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.body["planId"], "monthly");
    let session_id = created.body["sessionId"].as_str().unwrap().to_owned();
    assert!(
        created.body["checkoutUrl"]
            .as_str()
            .unwrap()
            .contains(&session_id)
    );
    // The same key again: the first answer, no second session at Stripe.
    let replayed = subscribe().await;
    assert_eq!(replayed.status, 201);
    assert_eq!(replayed.body["sessionId"], session_id.as_str());
    assert_eq!(stripe.session_count(), 1);
    let form = stripe.requests().pop().unwrap();
    assert_eq!(form.field("mode"), Some("subscription"));
    assert_eq!(
        form.field("line_items[0][price_data][recurring][interval]"),
        Some("month")
    );
    assert_eq!(
        form.field("line_items[0][price_data][unit_amount]"),
        Some("2000")
    );
    assert_eq!(
        form.field("subscription_data[metadata][planId]"),
        Some("monthly")
    );
    assert_eq!(
        form.field("subscription_data[metadata][userId]"),
        Some("fan")
    );
    // No portal before there is a subscription.
    let none = api
        .post(
            "/api/payments/subscriptions/portal",
            Some("fan"),
            &json!({}),
        )
        .await;
    assert_eq!(
        (none.status, none.body["code"].clone()),
        (404, json!("SUBSCRIPTION_NOT_FOUND"))
    );

    let subscription = stripe.pay_subscription(&session_id).await.unwrap();
    env.wait_for_count(
        "select count(*) from webhook_deliveries where processed_at is not null",
        3,
        WAIT,
    )
    .await;
    assert_eq!(env.balance("fan").await, 1200, "the first period's credits");
    let mine = api.get("/api/payments/subscriptions", Some("fan")).await;
    assert_eq!(mine.status, 200, "{mine:?}");
    let first = &mine.body["subscriptions"][0];
    assert_eq!(first["id"], subscription.as_str());
    assert_eq!(first["status"], "active");
    assert_eq!(first["planId"], "monthly");
    assert_eq!(first["periodsPaid"], 1);
    assert_eq!(first["creditsGranted"], 1200);
    assert!(first["currentPeriodEnd"].is_string(), "{first}");
    let portal = api
        .post(
            "/api/payments/subscriptions/portal",
            Some("fan"),
            &json!({}),
        )
        .await;
    assert_eq!(portal.status, 200, "{portal:?}");
    assert!(portal.body["url"].as_str().unwrap().starts_with("https://"));
    // Another user sees none of it, and cannot change it.
    let other = api
        .get("/api/payments/subscriptions", Some("someone"))
        .await;
    assert_eq!(other.body["subscriptions"], json!([]));
    let change_path = format!("/api/payments/subscriptions/{subscription}/plan");
    let theirs = api
        .post(&change_path, Some("someone"), &json!({"planId": "yearly"}))
        .await;
    assert_eq!(theirs.status, 404, "{theirs:?}");

    // A plan change: yearly from the next period on, nothing now.
    let changed = api
        .post(&change_path, Some("fan"), &json!({"planId": "yearly"}))
        .await;
    assert_eq!(changed.status, 200, "{changed:?}");
    assert_eq!(changed.body["planId"], "yearly");
    env.wait_for_count(
        "select count(*) from subscriptions where plan_id = 'yearly'",
        1,
        WAIT,
    )
    .await;
    assert_eq!(
        env.balance("fan").await,
        1200,
        "no proration, no credits yet"
    );
    stripe.renew(&subscription).await.unwrap();
    env.wait_for_count(
        "select count(*) from webhook_deliveries where outcome = 'granted'",
        2,
        WAIT,
    )
    .await;
    assert_eq!(
        env.balance("fan").await,
        1200 + 16000,
        "the renewal is yearly"
    );
    let mine = api.get("/api/payments/subscriptions", Some("fan")).await;
    assert_eq!(mine.body["subscriptions"][0]["planId"], "yearly");
    assert_eq!(mine.body["subscriptions"][0]["periodsPaid"], 2);
}

/// A refund of an invoice whose event did not list its payment: no order
/// holds the PaymentIntent, so the worker asks Stripe which invoice it paid
/// and applies the refund, instead of waiting and parking it.
#[tokio::test]
async fn a_refund_of_an_invoice_paid_order_is_found_through_stripe() {
    use ledgerhook_tests::fake_stripe::{FAKE_SECRET_KEY, FakeStripe};

    let python = tokio::task::spawn_blocking(stripe_python);
    let env = TestEnv::new().await.unwrap();
    let fake = FakeStripe::start().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let _worker = env
        .start_worker(&[
            ("STRIPE_SECRET_KEY", FAKE_SECRET_KEY),
            ("STRIPE_API_URL", fake.api_url.as_str()),
            ("WORKER_RETRY_ATTEMPTS", "1"),
        ])
        .await
        .unwrap();
    let stripe = Stripe {
        python: python.await.unwrap(),
    };
    let start = now_secs();
    let mut paid = invoice_event(
        "invoice.paid",
        "in_unlisted",
        "subscription_create",
        ("monthly", 2000),
        (start, start + 30 * DAY),
        "pi_unused",
    );
    // Webhooks need not include the invoice's payments.
    paid["data"]["object"]
        .as_object_mut()
        .unwrap()
        .remove("payments");
    assert_eq!(stripe.deliver(&env, &ingester, &paid).await, "granted");
    assert_eq!(env.balance("subscriber-1").await, 1200);
    fake.record_invoice_payment("in_unlisted", "pi_unlisted");

    let refund = refunded("pi_unlisted", 2000, 2000);
    assert_eq!(stripe.deliver(&env, &ingester, &refund).await, "reversed");
    assert_eq!(env.balance("subscriber-1").await, 0);
    let held: Option<String> = sqlx::query_scalar(
        "select payment_intent from payment_orders where provider_order_id = 'in_unlisted'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        held.as_deref(),
        Some("pi_unlisted"),
        "the order now holds its payment"
    );
}
