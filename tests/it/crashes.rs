//! Workers that die or stop: no credit lost, none doubled.

use std::time::Duration;

use futures_util::future::join_all;
use ledgerhook_tests::harness::{TestEnv, eventually, seen};
use ledgerhook_tests::scrape;
use ledgerhook_tests::webhook::{order_paid, payment_succeeded};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_worker_killed_mid_stream_and_restarted_grants_every_order_exactly_once() {
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    const ORDERS: i64 = 300;
    // Each order twice (two event names), so duplicates also cross the crash.
    let bodies: Vec<_> = (0..ORDERS)
        .flat_map(|n| {
            let (order, user) = (format!("crash-{n}"), format!("crash-user-{}", n % 10));
            [
                payment_succeeded(&order, &user, "pro", "50"),
                order_paid(&order, &user, "pro", "50.00"),
            ]
        })
        .collect();
    for chunk in bodies.chunks(50) {
        let answers = join_all(chunk.iter().map(|b| ingester.send(b))).await;
        assert!(answers.iter().all(|a| a.status == 200));
    }

    let processed = "select count(*) from webhook_deliveries where processed_at is not null";
    // The test holds the last few deliveries locked while a worker runs, so
    // it is always killed part-way through, however fast it is.
    let mut held = Some(hold_back_the_last_deliveries(&env).await);
    let mut worker = env
        .start_worker(&[("WORKER_CONCURRENCY", "4")])
        .await
        .unwrap();
    for round in 1..=3 {
        let target = round * ORDERS / 2;
        eventually(WAIT, async || {
            let done = env.count(processed).await;
            seen(done, done >= target)
                .map_err(|done| format!("{done} of {target} processed before kill {round}"))
        })
        .await;
        worker.kill();
        let done = env.count(processed).await;
        assert!(
            done < 2 * ORDERS,
            "killed before the end (round {round}: {done} done)"
        );
        if let Some(held) = held.take() {
            held.rollback().await.unwrap();
        }
        // The last worker may finish.
        if round < 3 {
            held = Some(hold_back_the_last_deliveries(&env).await);
        }
        worker.restart().await.unwrap();
    }
    env.wait_all_processed(2 * ORDERS, WAIT).await;

    for user in 0..10 {
        assert_eq!(
            env.balance(&format!("crash-user-{user}")).await,
            30 * 3300,
            "crash-user-{user}"
        );
    }
    assert_eq!(
        env.count("select count(*) from credit_ledger").await,
        ORDERS
    );
    assert_eq!(
        env.count("select count(*) from webhook_deliveries where outcome = 'duplicate'")
            .await,
        ORDERS
    );
    env.wait_for_count("select count(*) from delivery_outbox", 0, WAIT)
        .await;
}

/// Locks ten of the last unprocessed deliveries (in a transaction the caller
/// holds), so no worker can process them until it ends.
async fn hold_back_the_last_deliveries(
    env: &TestEnv,
) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut held = env.pool.begin().await.unwrap();
    let rows: Vec<i64> = sqlx::query_scalar(
        "select id from webhook_deliveries where processed_at is null
         order by id desc limit 10 for update skip locked",
    )
    .fetch_all(&mut *held)
    .await
    .unwrap();
    assert!(!rows.is_empty(), "deliveries left to hold back");
    held
}

#[tokio::test]
async fn sigterm_stops_the_worker_promptly_and_the_next_one_finishes_the_work() {
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let mut worker = env
        .start_worker(&[("WORKER_CONCURRENCY", "2")])
        .await
        .unwrap();
    let bodies: Vec<_> = (0..200)
        .map(|n| payment_succeeded(&format!("term-{n}"), "term-user", "starter", "10"))
        .collect();
    let answers = join_all(bodies.iter().map(|b| ingester.send(b))).await;
    assert!(answers.iter().all(|a| a.status == 200));

    let status = worker.terminate(Duration::from_secs(25)).await.unwrap();
    assert!(status.success(), "clean exit: {status:?}");

    let _next = env.start_worker(&[]).await.unwrap();
    env.wait_all_processed(200, WAIT).await;
    assert_eq!(env.balance("term-user").await, 200 * 500);
}

#[tokio::test]
async fn an_unattributable_payment_is_retried_then_parked_with_its_reason() {
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let worker = env
        .start_worker(&[
            ("WORKER_RETRY_INITIAL_MS", "50"),
            ("WORKER_RETRY_ATTEMPTS", "3"),
        ])
        .await
        .unwrap();
    let mut orphan = payment_succeeded("orphan", "x", "starter", "10");
    orphan["data"].as_object_mut().unwrap().remove("metadata");
    let no_order_id = serde_json::json!({"type": "order.paid", "payload": {"totalPrice": "10"}});
    assert_eq!(ingester.send(&orphan).await.status, 200);
    assert_eq!(ingester.send(&no_order_id).await.status, 200);
    env.wait_all_processed(2, WAIT).await;

    let reasons: Vec<String> = sqlx::query_scalar(
        "select outcome_detail from webhook_deliveries where outcome = 'parked' order by id",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons[0].contains("orphan") && reasons[0].contains("3 attempts"),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("orderId"), "{reasons:?}");
    let metrics = worker
        .metrics_once("ledgerhook_parked_total", &[], 2.0)
        .await;
    assert_eq!(scrape::sum(&metrics, "ledgerhook_parked_total", &[]), 2.0);
    assert_eq!(
        scrape::sum(
            &metrics,
            "ledgerhook_worker_retries_total",
            &["reason=\"order_unknown\""]
        ),
        2.0
    );
    assert_eq!(env.count("select count(*) from credit_ledger").await, 0);
}

#[tokio::test]
async fn workers_killed_again_and_again_under_the_load_generator_grant_every_order_once() {
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let mut worker = env
        .start_worker(&[("WORKER_CONCURRENCY", "2"), ("WORKER_BATCH_SIZE", "16")])
        .await
        .unwrap();
    let load = env.loadgen(
        &ingester,
        &[
            "--count",
            "1500",
            "--concurrency",
            "16",
            "--rate",
            "300",
            "--duplicates",
            "1",
            "--wait-timeout-secs",
            "120",
        ],
    );
    // Kill the worker each time it has made some progress while the load
    // runs, then let one finish.
    let processed = "select count(*) from webhook_deliveries where processed_at is not null";
    let mut done = 0;
    for kill in 1..=5 {
        let target = done + 100;
        done = eventually(WAIT, async || {
            let done = env.count(processed).await;
            seen(done, done >= target)
                .map_err(|done| format!("{done} of {target} processed before kill {kill}"))
        })
        .await;
        worker.kill();
        worker.restart().await.unwrap();
    }
    let (ok, output) = load.await.unwrap();
    assert!(ok, "{output}");
    assert!(output.contains("invariant holds"), "{output}");
    env.wait_for_count("select count(*) from delivery_outbox", 0, WAIT)
        .await;
    assert_eq!(env.count("select count(*) from credit_ledger").await, 1500);
    assert_eq!(
        env.count("select count(*) from webhook_deliveries where outcome = 'duplicate'")
            .await,
        1500
    );
}
