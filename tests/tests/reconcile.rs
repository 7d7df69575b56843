//! Reconcile, the runbook for a webhook that never came: the worker's
//! schedule asks (the fake) Crossmint about orders still pending, records a
//! paid one's answer as a delivery and grants it through the same path, once;
//! the webhook arriving late is then a duplicate.

use std::time::Duration;

use ledgerhook_tests::fake_crossmint::{Behaviour, FAKE_API_KEY, FakeCrossmint};
use ledgerhook_tests::harness::{TestEnv, eventually};
use ledgerhook_tests::webhook::payment_succeeded;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_payment_whose_webhook_never_came_is_granted_once_by_reconcile() {
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let api = env.start_api(&crossmint.api_url, &[]).await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();

    let mut orders = Vec::new();
    for user in ["paid-buyer", "unpaid-buyer"] {
        let created = api
            .post(
                "/api/payments/orders",
                Some(user),
                &json!({"packageId": "pro"}),
            )
            .await;
        assert_eq!(created.status, 201, "{created:?}");
        orders.push(created.body["orderId"].as_str().unwrap().to_owned());
    }
    let (paid, unpaid) = (&orders[0], &orders[1]);

    // Crossmint is down at first: reconcile learns nothing and records nothing.
    crossmint.behave(Behaviour::Fail);
    let worker = env
        .start_worker(&[
            ("RECONCILE_INTERVAL_SECS", "1"),
            ("RECONCILE_OLDER_THAN_SECS", "0"),
            ("CROSSMINT_API_URL", &crossmint.api_url),
            ("CROSSMINT_SERVER_API_KEY", FAKE_API_KEY),
        ])
        .await
        .unwrap();
    worker
        .metrics_once(
            "ledgerhook_reconcile_orders_total",
            &["result=\"failed\""],
            2.0,
        )
        .await;
    assert_eq!(
        env.count("select count(*) from webhook_deliveries").await,
        0
    );

    // Crossmint is back, and says one order was paid (no webhook came).
    crossmint.behave(Behaviour::Answer);
    assert!(crossmint.pay(paid, "50.00"));
    env.wait_for_count(
        "select count(*) from payment_orders where status = 'completed'",
        1,
        WAIT,
    )
    .await;
    assert_eq!(env.balance("paid-buyer").await, 3300);
    assert_eq!(env.balance("unpaid-buyer").await, 0);
    let (provider, delivery_id, outcome): (String, String, Option<String>) =
        sqlx::query_as("select provider, delivery_id, outcome from webhook_deliveries")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(provider, "reconcile");
    assert_eq!(delivery_id, format!("reconcile:{paid}"));
    assert_eq!(outcome.as_deref(), Some("granted"));
    let status: String =
        sqlx::query_scalar("select status from payment_orders where crossmint_order_id = $1")
            .bind(unpaid)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(status, "pending");

    // The schedule keeps asking about the unpaid order only.
    let lookups_before = crossmint.lookups().len();
    eventually(WAIT, async || {
        let later: Vec<String> = crossmint.lookups()[lookups_before..].to_vec();
        if later.iter().any(|id| id == paid) {
            panic!("asked again about the order already granted: {later:?}");
        }
        if later.iter().filter(|id| *id == unpaid).count() >= 2 {
            Ok(())
        } else {
            Err(format!("lookups since: {later:?}"))
        }
    })
    .await;

    // The webhook finally arrives: a duplicate, nothing more granted.
    let late = payment_succeeded(paid, "paid-buyer", "pro", "50.00");
    assert_eq!(ingester.send(&late).await.status, 200);
    env.wait_all_processed(2, WAIT).await;
    assert_eq!(env.balance("paid-buyer").await, 3300);
    assert_eq!(
        env.count("select count(*) from credit_ledger where kind = 'purchase_grant'")
            .await,
        1
    );
    assert_eq!(
        env.count("select count(*) from webhook_deliveries where outcome = 'duplicate'")
            .await,
        1
    );
    let page = worker
        .metrics_once("ledgerhook_duplicate_orders_total", &[], 1.0)
        .await;
    assert_eq!(
        ledgerhook_tests::scrape::sum(
            &page,
            "ledgerhook_reconcile_orders_total",
            &["result=\"recorded\""]
        ),
        1.0,
        "recorded once, whatever the runs in between saw"
    );
}
