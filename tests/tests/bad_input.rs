//! Verified but wrong: amounts and packages that must never move money.
//! Each ends held for review or parked with a reason, and counted.

use std::time::Duration;

use ledgerhook_tests::harness::TestEnv;
use ledgerhook_tests::scrape;
use ledgerhook_tests::webhook::payment_succeeded;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn negative_zero_absurd_and_non_numeric_amounts_grant_nothing_and_hold_the_order() {
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let worker = env.start_worker(&[]).await.unwrap();

    let amounts = [
        json!("-10.00"),
        json!("0"),
        json!("0.00"),
        json!("99999999999999999999"),
        json!("1e1"),
        json!("ten"),
        json!("10.0000001"),
        json!(10.5),
        json!(null),
        json!({"value": "10"}),
    ];
    for (n, amount) in amounts.iter().enumerate() {
        let mut body = payment_succeeded(
            &format!("amount-{n}"),
            &format!("amount-user-{n}"),
            "starter",
            "10",
        );
        body["data"]["payment"]["received"]["amount"] = amount.clone();
        if amount.is_null() {
            // No amount anywhere: nothing proves what was paid.
            body["data"]["payment"]
                .as_object_mut()
                .unwrap()
                .remove("received");
        }
        assert_eq!(ingester.send(&body).await.status, 200, "{amount}");
    }
    let count = amounts.len() as i64;
    env.wait_all_processed(count, WAIT).await;

    assert_eq!(env.count("select count(*) from credit_ledger").await, 0);
    assert_eq!(
        env.count("select coalesce(sum(balance), 0)::int8 from user_credits")
            .await,
        0
    );
    assert_eq!(
        env.count("select count(*) from webhook_deliveries where outcome = 'conflict'")
            .await,
        count
    );
    assert_eq!(
        env.count("select count(*) from payment_orders where review_reason is not null and status = 'pending'").await,
        count
    );
    assert_eq!(
        scrape::sum(
            &worker.metrics().await,
            "ledgerhook_order_conflicts_total",
            &[]
        ),
        count as f64
    );
}

#[tokio::test]
async fn an_unknown_package_or_a_body_without_an_order_is_parked_with_its_reason() {
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let worker = env
        .start_worker(&[
            ("WORKER_RETRY_INITIAL_MS", "20"),
            ("WORKER_RETRY_ATTEMPTS", "2"),
        ])
        .await
        .unwrap();

    let unknown_package = payment_succeeded("pkg-1", "pkg-user", "enterprise", "10");
    let no_order =
        json!({"type": "orders.payment.succeeded", "data": {"payment": {"status": "completed"}}});
    let not_an_object = json!(["orders.payment.succeeded"]);
    let hostile = payment_succeeded(
        "o'; drop table payment_orders;--\"é🙂",
        "u\"; select 1",
        "vip",
        "100.00",
    );
    for body in [&unknown_package, &no_order, &not_an_object, &hostile] {
        assert_eq!(ingester.send(body).await.status, 200);
    }
    env.wait_all_processed(4, WAIT).await;

    let parked: Vec<(String, String)> = sqlx::query_as(
        "select convert_from(body, 'UTF8'), outcome_detail from webhook_deliveries where outcome = 'parked' order by id",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(parked.len(), 3, "{parked:?}");
    assert!(parked[0].1.contains("pkg-1"), "{parked:?}");
    assert!(
        parked[1].1.contains("no order object") || parked[1].1.contains("orderId"),
        "{parked:?}"
    );
    assert!(parked[2].1.contains("not a JSON object"), "{parked:?}");
    let metrics = worker.metrics().await;
    assert_eq!(scrape::sum(&metrics, "ledgerhook_parked_total", &[]), 3.0);

    // Quotes, semicolons and unicode in ids are data, not SQL.
    assert_eq!(env.balance("u\"; select 1").await, 9600);
    assert_eq!(
        env.count("select count(*) from payment_orders where crossmint_order_id = 'o''; drop table payment_orders;--\"é🙂'").await,
        1
    );
}
