//! Events out of order and contradicting each other: money received wins,
//! nothing is granted twice, and every anomaly is recorded and counted.

use std::time::Duration;

use ledgerhook_tests::harness::TestEnv;
use ledgerhook_tests::scrape;
use ledgerhook_tests::webhook::{delivery_completed, order_paid, payment_succeeded};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

fn cancelled(order: &str, user: &str, package: &str) -> serde_json::Value {
    json!({"type": "order.cancelled", "payload": {
        "orderId": order, "reason": "user-cancelled", "metadata": {"userId": user, "packageId": package}}})
}

fn failed(order: &str, user: &str, package: &str) -> serde_json::Value {
    json!({"type": "orders.payment.failed", "data": {
        "orderId": order, "payment": {"status": "failed", "failureReason": {"code": "expired"}},
        "metadata": {"userId": user, "packageId": package}}})
}

async fn status_of(env: &TestEnv, order: &str) -> String {
    sqlx::query_scalar("select status from payment_orders where provider_order_id = $1")
        .bind(order)
        .fetch_one(&env.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn out_of_order_and_contradictory_events_follow_the_documented_transitions() {
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let worker = env.start_worker(&[]).await.unwrap();
    let mut sent = 0;
    // Each step waits for the previous one, so the order of arrival is the
    // one under test.
    macro_rules! deliver {
        ($body:expr) => {{
            assert_eq!(ingester.send(&$body).await.status, 200);
            sent += 1;
            env.wait_all_processed(sent, WAIT).await;
        }};
    }

    // Delivery completed before any payment event: recorded, order pending.
    deliver!(delivery_completed("early-delivery", "u-early", "pro"));
    assert_eq!(status_of(&env, "early-delivery").await, "pending");
    deliver!(payment_succeeded("early-delivery", "u-early", "pro", "50"));
    assert_eq!(status_of(&env, "early-delivery").await, "completed");
    assert_eq!(env.balance("u-early").await, 3300);

    // Cancelled, then paid: the money received wins (an anomaly, counted).
    deliver!(cancelled("cancel-then-pay", "u-cancel", "starter"));
    assert_eq!(status_of(&env, "cancel-then-pay").await, "cancelled");
    deliver!(order_paid(
        "cancel-then-pay",
        "u-cancel",
        "starter",
        "10.00"
    ));
    assert_eq!(status_of(&env, "cancel-then-pay").await, "completed");
    assert_eq!(env.balance("u-cancel").await, 500);

    // Succeeded, then failed, then cancelled: stays completed, both recorded as anomalies.
    deliver!(payment_succeeded("pay-then-fail", "u-pay", "vip", "100"));
    deliver!(failed("pay-then-fail", "u-pay", "vip"));
    deliver!(cancelled("pay-then-fail", "u-pay", "vip"));
    assert_eq!(status_of(&env, "pay-then-fail").await, "completed");
    assert_eq!(env.balance("u-pay").await, 9600);

    // Failed, then succeeded twice: granted once, the second a duplicate.
    deliver!(failed("fail-then-pay", "u-fail", "pro"));
    assert_eq!(status_of(&env, "fail-then-pay").await, "failed");
    deliver!(payment_succeeded("fail-then-pay", "u-fail", "pro", "50.00"));
    deliver!(order_paid("fail-then-pay", "u-fail", "pro", "50"));
    assert_eq!(env.balance("u-fail").await, 3300);

    assert_eq!(env.count("select count(*) from credit_ledger").await, 4);
    // Every delivery counted (the last metric each one records).
    let metrics = worker
        .metrics_once("ledgerhook_worker_deliveries_total", &[], sent as f64)
        .await;
    // cancel-then-pay, pay-then-fail x2, fail-then-pay.
    assert_eq!(
        scrape::sum(&metrics, "ledgerhook_order_anomalies_total", &[]),
        4.0
    );
    assert_eq!(
        scrape::sum(&metrics, "ledgerhook_duplicate_orders_total", &[]),
        1.0
    );
    let anomalies = env
        .count(
            "select count(*) from payment_order_events where event_data ->> 'anomaly' is not null",
        )
        .await;
    assert_eq!(anomalies, 4, "each anomaly is recorded on its order");
}
