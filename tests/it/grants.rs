//! A signed payment becomes exactly the package's credits, and anything that
//! does not add up is held instead of granted.

use std::time::Duration;

use ledgerhook_tests::harness::TestEnv;
use ledgerhook_tests::scrape;
use ledgerhook_tests::webhook::{delivery_completed, order_paid, payment_succeeded, price_of};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn each_package_is_granted_its_credits_in_both_envelopes() {
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let worker = env.start_worker(&[]).await.unwrap();

    let cases = [("starter", 500), ("pro", 3300), ("vip", 9600)];
    for (package, _) in cases {
        let crossmint = payment_succeeded(
            &format!("cm-{package}"),
            &format!("user-cm-{package}"),
            package,
            &price_of(package),
        );
        let seed = order_paid(
            &format!("seed-{package}"),
            &format!("user-seed-{package}"),
            package,
            &price_of(package),
        );
        assert_eq!(ingester.send(&crossmint).await.status, 200);
        assert_eq!(ingester.send(&seed).await.status, 200);
    }
    env.wait_all_processed(6, WAIT).await;

    for (package, credits) in cases {
        assert_eq!(
            env.balance(&format!("user-cm-{package}")).await,
            credits,
            "{package} via orders.payment.succeeded"
        );
        assert_eq!(
            env.balance(&format!("user-seed-{package}")).await,
            credits,
            "{package} via order.paid"
        );
    }
    assert_eq!(env.count("select count(*) from credit_ledger").await, 6);
    assert_eq!(
        env.count("select count(*) from payment_orders where status = 'completed'")
            .await,
        6
    );
    assert_eq!(
        env.count("select count(*) from payment_order_events where event_type = 'credits.added'")
            .await,
        6
    );
    // Every grant traces back to the delivery that caused it.
    assert_eq!(
        env.count(
            "select count(*) from credit_ledger l join webhook_deliveries d on d.id = l.delivery_id
             where d.outcome = 'granted'"
        )
        .await,
        6
    );
    // The processing time is recorded last.
    let metrics = worker
        .metrics_once("ledgerhook_webhook_processing_seconds_count", &[], 6.0)
        .await;
    assert_eq!(scrape::sum(&metrics, "ledgerhook_grants_total", &[]), 6.0);
    assert_eq!(
        scrape::sum(&metrics, "ledgerhook_credits_granted_total", &[]),
        2.0 * (500.0 + 3300.0 + 9600.0)
    );
    assert_eq!(
        scrape::sum(&metrics, "ledgerhook_webhook_processing_seconds_count", &[]),
        6.0
    );
}

#[tokio::test]
async fn an_order_created_before_payment_is_granted_without_metadata() {
    let env = TestEnv::new().await.unwrap();
    env.create_order("api-order-1", "user-api", "pro").await;
    let ingester = env.start_ingester(&[]).await.unwrap();
    let _worker = env.start_worker(&[]).await.unwrap();

    let mut body = payment_succeeded("api-order-1", "ignored", "pro", "50.00");
    body["data"].as_object_mut().unwrap().remove("metadata");
    assert_eq!(ingester.send(&body).await.status, 200);
    env.wait_all_processed(1, WAIT).await;

    assert_eq!(env.balance("user-api").await, 3300);
    assert_eq!(
        env.count("select count(*) from payment_orders where provider_order_id = 'api-order-1' and status = 'completed' and created_from = 'api'").await,
        1
    );
}

#[tokio::test]
async fn a_wrong_amount_currency_or_user_grants_nothing_and_holds_the_order() {
    let env = TestEnv::new().await.unwrap();
    env.create_order("held-user", "owner", "starter").await;
    let ingester = env.start_ingester(&[]).await.unwrap();
    let worker = env.start_worker(&[]).await.unwrap();

    let underpaid = payment_succeeded("held-amount", "user-a", "vip", "99.99");
    let mut wrong_currency = payment_succeeded("held-currency", "user-b", "starter", "10.00");
    wrong_currency["data"]["payment"]["received"]["currency"] = json!("usdc");
    let other_user = payment_succeeded("held-user", "intruder", "starter", "10.00");
    for body in [&underpaid, &wrong_currency, &other_user] {
        assert_eq!(ingester.send(body).await.status, 200);
    }
    env.wait_all_processed(3, WAIT).await;

    for user in ["user-a", "user-b", "owner", "intruder"] {
        assert_eq!(env.balance(user).await, 0, "{user} must not be credited");
    }
    assert_eq!(env.count("select count(*) from credit_ledger").await, 0);
    assert_eq!(
        env.count("select count(*) from payment_orders where review_reason is not null and status <> 'completed'").await,
        3
    );
    assert_eq!(
        env.count("select count(*) from webhook_deliveries where outcome = 'conflict'")
            .await,
        3
    );
    assert_eq!(
        scrape::sum(
            &worker
                .metrics_once("ledgerhook_order_conflicts_total", &[], 3.0)
                .await,
            "ledgerhook_order_conflicts_total",
            &[]
        ),
        3.0
    );

    // A correct payment later does not release a held order by itself.
    assert_eq!(
        ingester
            .send(&payment_succeeded("held-amount", "user-a", "vip", "100"))
            .await
            .status,
        200
    );
    env.wait_all_processed(4, WAIT).await;
    assert_eq!(env.balance("user-a").await, 0);
}

#[tokio::test]
async fn failures_cancellations_and_unknown_events_are_recorded_not_granted() {
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let worker = env.start_worker(&[]).await.unwrap();

    let failed = json!({"type": "orders.payment.failed", "data": {
        "orderId": "o-failed", "payment": {"status": "failed", "failureReason": {"code": "insufficient-funds"}},
        "metadata": {"userId": "u1", "packageId": "starter"}}});
    let cancelled = json!({"type": "order.cancelled", "payload": {
        "orderId": "o-cancelled", "reason": "user-cancelled", "metadata": {"userId": "u2", "packageId": "pro"}}});
    let unknown = json!({"type": "orders.refund.requested", "data": {"orderId": "o-x"}});
    let delivered = delivery_completed("o-delivered", "u3", "vip");
    for body in [&failed, &cancelled, &unknown, &delivered] {
        assert_eq!(ingester.send(body).await.status, 200);
    }
    env.wait_all_processed(4, WAIT).await;

    assert_eq!(env.count("select count(*) from payment_orders where provider_order_id = 'o-failed' and status = 'failed'").await, 1);
    assert_eq!(env.count("select count(*) from payment_orders where provider_order_id = 'o-cancelled' and status = 'cancelled'").await, 1);
    assert_eq!(env.count("select count(*) from payment_orders where provider_order_id = 'o-delivered' and status = 'pending'").await, 1);
    assert_eq!(
        env.count("select count(*) from webhook_deliveries where outcome = 'ignored'")
            .await,
        1
    );
    assert_eq!(env.count("select count(*) from credit_ledger").await, 0);

    // Money received wins over an earlier failure, once.
    let paid = payment_succeeded("o-failed", "u1", "starter", "10");
    assert_eq!(ingester.send(&paid).await.status, 200);
    env.wait_all_processed(5, WAIT).await;
    assert_eq!(env.balance("u1").await, 500);
    let detail: String = sqlx::query_scalar(
        "select outcome_detail from webhook_deliveries where outcome = 'granted'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert!(detail.contains("after it had failed"), "{detail}");
    assert_eq!(
        scrape::sum(
            &worker
                .metrics_once("ledgerhook_order_anomalies_total", &[], 1.0)
                .await,
            "ledgerhook_order_anomalies_total",
            &[]
        ),
        1.0
    );
}

/// The payment success rate's counter counts orders by how their payment
/// ended, once each: duplicates were successes, a resent failure a second
/// failure, and an order that expired unpaid nothing at all.
#[tokio::test]
async fn the_payment_counter_counts_each_order_once_by_how_it_ended() {
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    for (order, package) in [
        ("rate-paid", "starter"),
        ("rate-failed", "starter"),
        ("rate-held", "pro"),
    ] {
        env.create_order(order, "rate-user", package).await;
    }
    // An order created two hours ago and never paid: the timeout job's.
    env.create_order("rate-expired", "rate-user", "starter")
        .await;
    sqlx::query(
        "update payment_orders set created_at = now() - interval '2 hours'
         where provider_order_id = 'rate-expired'",
    )
    .execute(&env.pool)
    .await
    .unwrap();
    // Started after it: the timeout job's later runs look back only as far
    // as its first run's cutoff.
    let worker = env
        .start_worker(&[("PAYMENT_TIMEOUT_INTERVAL_SECS", "1")])
        .await
        .unwrap();

    let paid = payment_succeeded("rate-paid", "rate-user", "starter", "10");
    let failed = json!({"type": "orders.payment.failed", "data": {
        "orderId": "rate-failed", "payment": {"status": "failed", "failureReason": {"code": "insufficient-funds"}},
        "metadata": {"userId": "rate-user", "packageId": "starter"}}});
    let short = payment_succeeded("rate-held", "rate-user", "pro", "10");
    // Each event three times, under new delivery ids.
    for body in [&paid, &failed, &short] {
        for _ in 0..3 {
            assert_eq!(ingester.send(body).await.status, 200);
        }
    }
    env.wait_all_processed(9, WAIT).await;
    let page = worker
        .metrics_once("ledgerhook_payments_total", &[r#"result="expired""#], 1.0)
        .await;
    for result in ["succeeded", "failed", "held", "expired"] {
        let label = format!("result=\"{result}\"");
        assert_eq!(
            scrape::sum(
                &page,
                "ledgerhook_payments_total",
                &["provider=\"crossmint\"", &label]
            ),
            1.0,
            "{result}"
        );
    }
    assert_eq!(
        scrape::sum(&page, "ledgerhook_duplicate_orders_total", &[]),
        2.0,
        "the duplicates are counted where they belong"
    );
}
