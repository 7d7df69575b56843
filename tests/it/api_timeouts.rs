//! Payment timeouts: the worker's job expires an order left unpaid past
//! `PAYMENT_TIMEOUT_MINUTES`, confirm then answers `PAYMENT_TIMEOUT`, the
//! history shows it, and a payment that still arrives grants once, counted
//! as an anomaly.

use std::time::Duration;

use ledgerhook_tests::fake_crossmint::FakeCrossmint;
use ledgerhook_tests::harness::TestEnv;
use ledgerhook_tests::webhook::payment_succeeded;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

fn status_of(order_id: &str) -> String {
    format!("select status from payment_orders where provider_order_id = '{order_id}'")
}

async fn status(env: &TestEnv, order_id: &str) -> String {
    sqlx::query_scalar(&status_of(order_id))
        .fetch_one(&env.pool)
        .await
        .unwrap()
}

/// A one-hour timeout checked every second: orders are made stale by
/// backdating them hours, and an order created by the test itself cannot
/// reach its timeout while the test runs.
const TIMEOUT_SETTINGS: [(&str, &str); 3] = [
    ("PAYMENT_TIMEOUT_MINUTES", "60"),
    ("PAYMENT_TIMEOUT_INTERVAL_SECS", "1"),
    ("CREDIT_EXPIRY_INTERVAL_SECS", "0"),
];

async fn backdate(env: &TestEnv, order_id: &str, by: &str) {
    let updated = sqlx::query(&format!(
        "update payment_orders set created_at = now() - interval '{by}'
         where provider_order_id = $1"
    ))
    .bind(order_id)
    .execute(&env.pool)
    .await
    .unwrap();
    assert_eq!(updated.rows_affected(), 1, "{order_id}");
}

async fn expiry_events(env: &TestEnv, order_id: &str) -> i64 {
    env.count(&format!(
        "select count(*) from payment_order_events e join payment_orders o on o.id = e.order_id
         where o.provider_order_id = '{order_id}' and e.event_type = 'order.expired'"
    ))
    .await
}

#[tokio::test]
async fn an_unpaid_order_expires_confirm_says_payment_timeout_and_a_late_payment_still_grants_once()
{
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let api = env.start_api(&crossmint.api_url, &[]).await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();

    let order = |package: &'static str| {
        let api = &api;
        async move {
            let created = api
                .post(
                    "/api/payments/orders",
                    Some("slow-payer"),
                    &json!({"packageId": package}),
                )
                .await;
            assert_eq!(created.status, 201, "{created:?}");
            created.body["orderId"].as_str().unwrap().to_owned()
        }
    };
    let stale = order("starter").await;
    let fresh = order("pro").await;
    // Created two hours ago, as far as the timeout is concerned; the fresh
    // one is an hour from its timeout, far beyond any run of this test.
    backdate(&env, &stale, "2 hours").await;

    // Act: the worker's job, every second, with a one-hour timeout.
    let worker = env.start_worker(&TIMEOUT_SETTINGS).await.unwrap();
    env.wait_for_count(
        &format!("select count(*) from payment_orders where provider_order_id = '{stale}' and status = 'expired'"),
        1,
        WAIT,
    )
    .await;
    let page = worker
        .metrics_once("ledgerhook_orders_expired_total", &[], 1.0)
        .await;
    assert_eq!(
        ledgerhook_tests::scrape::sum(&page, "ledgerhook_orders_expired_total", &[]),
        1.0
    );
    assert_eq!(
        status(&env, &fresh).await,
        "pending",
        "the fresh order waits"
    );
    assert_eq!(expiry_events(&env, &stale).await, 1);
    assert_eq!(expiry_events(&env, &fresh).await, 0);
    assert_eq!(
        api.service
            .metric("ledgerhook_api_orders_created_total", &[])
            .await,
        2.0
    );

    let confirm_body = json!({ "orderId": stale });
    let confirm = || api.post("/api/payments/confirm", Some("slow-payer"), &confirm_body);
    let timed_out = confirm().await;
    assert_eq!(timed_out.status, 409, "{timed_out:?}");
    assert_eq!(timed_out.body["code"], "PAYMENT_TIMEOUT");
    assert_eq!(timed_out.body["details"]["orderId"], stale.as_str());
    assert_eq!(timed_out.body["details"]["status"], "expired");
    assert!(
        timed_out.body["details"]["expiredAt"].is_string(),
        "{timed_out:?}"
    );
    // Not an invitation to pay again: a buyer who paid still gets credits.
    assert_eq!(timed_out.body["details"]["retryable"], false);
    assert_eq!(
        timed_out.body["details"]["paidLate"]["creditsStillAdded"],
        true
    );
    assert!(
        timed_out.body["error"]
            .as_str()
            .unwrap()
            .contains("if you already paid"),
        "{timed_out:?}"
    );

    let history = api.get("/api/payments/history", Some("slow-payer")).await;
    assert_eq!(history.status, 200, "{history:?}");
    let listed = history.body["orders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["orderId"] == stale.as_str())
        .unwrap()
        .clone();
    assert_eq!(listed["status"], "expired");
    let steps: Vec<&str> = listed["statusHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["pending", "expired"]);

    // The money arrives late: it wins, once, and is counted as an anomaly.
    let paid = payment_succeeded(&stale, "slow-payer", "starter", "10.00");
    assert_eq!(ingester.send(&paid).await.status, 200);
    env.wait_for_count(
        &format!("select count(*) from payment_orders where provider_order_id = '{stale}' and status = 'completed'"),
        1,
        WAIT,
    )
    .await;
    let again = payment_succeeded(&stale, "slow-payer", "starter", "10.00");
    assert_eq!(ingester.send(&again).await.status, 200);
    env.wait_all_processed(2, WAIT).await;
    assert_eq!(env.balance("slow-payer").await, 500);
    assert_eq!(env.count("select count(*) from credit_ledger").await, 1);
    let page = worker
        .metrics_once("ledgerhook_order_anomalies_total", &[], 1.0)
        .await;
    assert_eq!(
        ledgerhook_tests::scrape::sum(&page, "ledgerhook_order_anomalies_total", &[]),
        1.0
    );
    let detail: String = sqlx::query_scalar(
        "select outcome_detail from webhook_deliveries where outcome = 'granted'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert!(detail.contains("payment after timeout"), "{detail}");

    let completed = confirm().await;
    assert_eq!(completed.status, 200, "{completed:?}");
    assert_eq!(completed.body["status"], "completed");
    assert_eq!(completed.body["creditsAdded"], 500);
    // The expiry stays on record beside the completion.
    let expired_at_kept = env
        .count(&format!(
            "select count(*) from payment_orders
             where provider_order_id = '{stale}' and expired_at is not null"
        ))
        .await;
    assert_eq!(expired_at_kept, 1);
    // A run after the completion: the fresh order, now stale too, expires.
    // Both are put just past the timeout in one statement, inside the range
    // of the job's bounded scan, so the run that expires the fresh one looks
    // at the completed order too, and leaves it alone: still completed, one
    // expiry.
    let backdated = sqlx::query(
        "update payment_orders set created_at = now() - interval '61 minutes'
         where provider_order_id in ($1, $2)",
    )
    .bind(&stale)
    .bind(&fresh)
    .execute(&env.pool)
    .await
    .unwrap();
    assert_eq!(backdated.rows_affected(), 2);
    env.wait_for_count(
        &format!("select count(*) from payment_orders where provider_order_id = '{fresh}' and status = 'expired'"),
        1,
        WAIT,
    )
    .await;
    assert_eq!(status(&env, &stale).await, "completed");
    assert_eq!(expiry_events(&env, &stale).await, 1);
    assert_eq!(expiry_events(&env, &fresh).await, 1);
}

#[tokio::test]
async fn two_workers_expire_each_stale_order_once_and_leave_the_rest() {
    let env = TestEnv::new().await.unwrap();
    let stale: Vec<String> = (0..20).map(|i| format!("stale-{i}")).collect();
    for order in &stale {
        env.create_order(order, "cart-abandoner", "starter").await;
    }
    env.create_order("fresh", "cart-abandoner", "starter").await;
    // Held for review: a person decides, the timeout does not.
    env.create_order("reviewed", "cart-abandoner", "starter")
        .await;
    sqlx::query(
        "update payment_orders set created_at = now() - interval '2 hours',
             review_reason = case when provider_order_id = 'reviewed' then 'test' end
         where provider_order_id <> 'fresh'",
    )
    .execute(&env.pool)
    .await
    .unwrap();

    let (first, second) = tokio::join!(
        env.start_worker(&TIMEOUT_SETTINGS),
        env.start_worker(&TIMEOUT_SETTINGS)
    );
    let workers = [first.unwrap(), second.unwrap()];
    env.wait_for_count(
        "select count(*) from payment_orders where status = 'expired'",
        20,
        WAIT,
    )
    .await;

    // Each expired once: one history entry and one event each, and the two
    // workers' counters add up to the orders, not more.
    let expiries = env
        .count(
            "select count(*) from payment_orders, jsonb_array_elements(status_history) h
             where h->>'status' = 'expired'",
        )
        .await;
    assert_eq!(expiries, 20);
    assert_eq!(
        env.count("select count(*) from payment_order_events where event_type = 'order.expired'")
            .await,
        20
    );
    let counted = ledgerhook_tests::harness::eventually(WAIT, async || {
        let mut total = 0.0;
        for worker in &workers {
            total += worker.metric("ledgerhook_orders_expired_total", &[]).await;
        }
        ledgerhook_tests::harness::seen(total, total >= 20.0)
    })
    .await;
    assert_eq!(counted, 20.0);
    assert_eq!(status(&env, "fresh").await, "pending");
    assert_eq!(status(&env, "reviewed").await, "pending");
}

#[tokio::test]
async fn a_paused_system_expires_nothing_until_resumed() {
    let env = TestEnv::new().await.unwrap();
    env.create_order("paid-meanwhile", "patient-payer", "starter")
        .await;
    backdate(&env, "paid-meanwhile", "2 hours").await;
    admin(&env, &["pause", "--reason", "incident"]).await;

    // Its webhook would be waiting in the queue: the job holds off.
    let worker = env.start_worker(&TIMEOUT_SETTINGS).await.unwrap();
    worker
        .log_line(&["payment timeout held", "processing is paused"], WAIT)
        .await;
    assert_eq!(status(&env, "paid-meanwhile").await, "pending");
    assert_eq!(expiry_events(&env, "paid-meanwhile").await, 0);

    admin(&env, &["resume", "--reason", "incident over"]).await;
    env.wait_for_count(
        "select count(*) from payment_orders
         where provider_order_id = 'paid-meanwhile' and status = 'expired'",
        1,
        WAIT,
    )
    .await;
    worker
        .log_line(&["payment timeout running again"], WAIT)
        .await;
    assert_eq!(expiry_events(&env, "paid-meanwhile").await, 1);
}

#[tokio::test]
async fn an_old_unprocessed_delivery_holds_the_timeout_until_it_is_processed() {
    let env = TestEnv::new().await.unwrap();
    env.create_order("paid-in-backlog", "patient-payer", "starter")
        .await;
    backdate(&env, "paid-in-backlog", "2 hours").await;
    // Workers down or behind: a delivery received ten minutes ago and not
    // processed yet (recorded here directly, so no worker will take it).
    sqlx::query(
        "insert into webhook_deliveries
             (provider, delivery_id, body, headers, signed_at, received_at, verified_by)
         values ('crossmint', 'msg_waiting', '{}'::bytea, '[]'::json,
                 now() - interval '10 minutes', now() - interval '10 minutes', 'test')",
    )
    .execute(&env.pool)
    .await
    .unwrap();

    let worker = env.start_worker(&TIMEOUT_SETTINGS).await.unwrap();
    worker
        .log_line(
            &[
                "payment timeout held",
                "deliveries are waiting to be processed",
            ],
            WAIT,
        )
        .await;
    assert_eq!(status(&env, "paid-in-backlog").await, "pending");
    assert_eq!(expiry_events(&env, "paid-in-backlog").await, 0);

    // Caught up: the order expires.
    sqlx::query(
        "update webhook_deliveries set processed_at = now(), outcome = 'ignored'
         where delivery_id = 'msg_waiting'",
    )
    .execute(&env.pool)
    .await
    .unwrap();
    env.wait_for_count(
        "select count(*) from payment_orders
         where provider_order_id = 'paid-in-backlog' and status = 'expired'",
        1,
        WAIT,
    )
    .await;
    assert_eq!(expiry_events(&env, "paid-in-backlog").await, 1);
}

async fn admin(env: &TestEnv, args: &[&str]) {
    let mut all = vec!["--json", "--operator", "timeouts-test"];
    all.extend_from_slice(args);
    let run = env.admin_run(&all, &[]).await.unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
}
