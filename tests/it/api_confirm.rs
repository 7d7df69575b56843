//! Confirmation and history: the frontend polls while the webhook path
//! grants; confirm only reads, belongs to the order's owner, and is rate
//! limited.

use std::time::Duration;

use ledgerhook_tests::fake_crossmint::FakeCrossmint;
use ledgerhook_tests::harness::{TestEnv, eventually};
use ledgerhook_tests::scrape;
use ledgerhook_tests::webhook::payment_succeeded;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_grant_arriving_while_the_frontend_polls_confirm_shows_up_once() {
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let api = env
        .start_api(
            &crossmint.api_url,
            &[("CONFIRM_RATE_LIMIT_PER_MINUTE", "1000")],
        )
        .await
        .unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let _worker = env.start_worker(&[]).await.unwrap();

    let created = api
        .post(
            "/api/payments/orders",
            Some("poller"),
            &json!({"packageId": "vip"}),
        )
        .await;
    let order_id = created.body["orderId"].as_str().unwrap().to_owned();
    let body = json!({ "orderId": order_id });
    let confirm = || api.post("/api/payments/confirm", Some("poller"), &body);

    let before = confirm().await;
    assert_eq!(before.status, 200, "{before:?}");
    assert_eq!(before.body["status"], "pending");
    assert_eq!(before.body["success"], false);
    assert_eq!(before.body["creditsAdded"], 0);

    // The frontend polls; once a poll has shown the order pending,
    // Crossmint's webhook arrives.
    let pending_seen = tokio::sync::Notify::new();
    let polling = async {
        let mut seen = Vec::new();
        let done = eventually(WAIT, async || {
            let answer = confirm().await;
            assert_eq!(answer.status, 200, "{answer:?}");
            let status = answer.body["status"].as_str().unwrap().to_owned();
            if seen.last() != Some(&status) {
                seen.push(status.clone());
            }
            if status == "pending" {
                pending_seen.notify_one();
            }
            if status == "completed" {
                Ok(answer)
            } else {
                Err(format!("never completed: {seen:?}"))
            }
        })
        .await;
        (seen, done)
    };
    let paying = async {
        pending_seen.notified().await;
        let webhook = payment_succeeded(&order_id, "poller", "vip", "100.00");
        assert_eq!(ingester.send(&webhook).await.status, 200);
    };
    let ((seen, done), ()) = tokio::join!(polling, paying);
    assert_eq!(seen, ["pending", "completed"]);
    assert_eq!(done.body["success"], true);
    assert_eq!(done.body["creditsAdded"], 9600);

    // Polling more never grants more.
    for _ in 0..5 {
        assert_eq!(confirm().await.body["creditsAdded"], 9600);
    }
    assert_eq!(env.balance("poller").await, 9600);
    assert_eq!(env.count("select count(*) from credit_ledger").await, 1);
    let credits = api.get("/api/v1/user/credits", Some("poller")).await;
    assert_eq!(credits.body["credits"], 9600);
}

#[tokio::test]
async fn another_users_order_is_404_and_unknown_orders_too() {
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let api = env.start_api(&crossmint.api_url, &[]).await.unwrap();

    let created = api
        .post(
            "/api/payments/orders",
            Some("owner"),
            &json!({"packageId": "starter"}),
        )
        .await;
    let order_id = created.body["orderId"].as_str().unwrap();

    let mine = api
        .post(
            "/api/payments/confirm",
            Some("owner"),
            &json!({"orderId": order_id}),
        )
        .await;
    assert_eq!(mine.status, 200);
    for (user, order) in [("intruder", order_id), ("owner", "no-such-order")] {
        let answer = api
            .post(
                "/api/payments/confirm",
                Some(user),
                &json!({"orderId": order}),
            )
            .await;
        assert_eq!(answer.status, 404, "{user}: {answer:?}");
        assert_eq!(answer.body["code"], "ORDER_NOT_FOUND");
    }
    let history = api.get("/api/payments/history", Some("intruder")).await;
    assert_eq!(history.body["orders"].as_array().unwrap().len(), 0);
    assert_eq!(history.body["statistics"]["totalOrders"], 0);
}

#[tokio::test]
async fn confirm_allows_ten_requests_a_minute_per_user_then_429_with_retry_after() {
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let api = env.start_api(&crossmint.api_url, &[]).await.unwrap();
    let body = json!({"orderId": "whatever"});

    for n in 0..10 {
        let answer = api
            .post("/api/payments/confirm", Some("eager"), &body)
            .await;
        assert_eq!(answer.status, 404, "request {n} is allowed: {answer:?}");
    }
    let limited = api
        .post("/api/payments/confirm", Some("eager"), &body)
        .await;
    assert_eq!(limited.status, 429, "{limited:?}");
    assert_eq!(limited.body["code"], "RATE_LIMITED");
    let wait: u64 = limited.retry_after.as_deref().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");

    // Another user is not affected.
    let other = api.post("/api/payments/confirm", Some("calm"), &body).await;
    assert_eq!(other.status, 404);

    // The window is shared by every API instance (it lives in PostgreSQL).
    let second = env.start_api(&crossmint.api_url, &[]).await.unwrap();
    let elsewhere = second
        .post("/api/payments/confirm", Some("eager"), &body)
        .await;
    assert_eq!(elsewhere.status, 429, "{elsewhere:?}");

    assert_eq!(
        scrape::sum(
            &api.service.metrics().await,
            "ledgerhook_api_rate_limited_total",
            &["action=\"confirm\""]
        ),
        1.0
    );
}

#[tokio::test]
async fn history_pages_newest_first_with_statistics() {
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let api = env.start_api(&crossmint.api_url, &[]).await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let _worker = env.start_worker(&[]).await.unwrap();

    let mut orders = Vec::new();
    for package in ["starter", "pro", "vip", "pro"] {
        let created = api
            .post(
                "/api/payments/orders",
                Some("historian"),
                &json!({"packageId": package}),
            )
            .await;
        assert_eq!(created.status, 201);
        orders.push((
            created.body["orderId"].as_str().unwrap().to_owned(),
            package,
        ));
    }
    // Paid: the starter and the first pro; failed: the vip; pending: the last pro.
    let prices = [("starter", "10"), ("pro", "50")];
    for (order_id, package) in &orders[..2] {
        let price = prices.iter().find(|(p, _)| p == package).unwrap().1;
        let paid = payment_succeeded(order_id, "historian", package, price);
        assert_eq!(ingester.send(&paid).await.status, 200);
    }
    let failed = json!({"type": "orders.payment.failed", "data": {
        "orderId": orders[2].0, "payment": {"status": "failed"}}});
    assert_eq!(ingester.send(&failed).await.status, 200);
    env.wait_all_processed(3, WAIT).await;

    let page1 = api
        .get("/api/payments/history?page=1&pageSize=3", Some("historian"))
        .await;
    assert_eq!(page1.status, 200, "{page1:?}");
    let ids: Vec<&str> = page1.body["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["orderId"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [&orders[3].0, &orders[2].0, &orders[1].0].map(String::as_str)
    );
    assert_eq!(page1.body["pagination"]["totalPages"], 2);
    let page2 = api
        .get("/api/payments/history?page=2&pageSize=3", Some("historian"))
        .await;
    assert_eq!(page2.body["orders"][0]["orderId"], orders[0].0.as_str());
    assert_eq!(page2.body["orders"][0]["status"], "completed");

    let stats = &page1.body["statistics"];
    assert_eq!(stats["totalOrders"], 4);
    assert_eq!(stats["successfulOrders"], 2);
    assert_eq!(stats["failedOrders"], 1);
    assert_eq!(stats["totalSpent"], "60.000000");
    assert_eq!(stats["averageOrderValue"], "30.000000");
    assert_eq!(stats["totalCreditsEarned"], 500 + 3300);
    assert!(stats["firstPurchaseAt"].is_string() && stats["lastPurchaseAt"].is_string());
    assert_eq!(page1.body["currentStatus"]["pendingOrders"], 1);
    assert_eq!(
        page1.body["currentStatus"]["creditsAwaitingConfirmation"],
        3300
    );

    let bad = api
        .get("/api/payments/history?pageSize=1000", Some("historian"))
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["code"], "INVALID_REQUEST");
}
