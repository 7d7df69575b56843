//! Retries wait in RabbitMQ, not in a worker: a payment whose order appears
//! late is granted on a later attempt, other messages flow meanwhile, and a
//! waiting message survives a worker restart.

use std::time::{Duration, Instant};

use ledgerhook_tests::harness::TestEnv;
use ledgerhook_tests::scrape;
use ledgerhook_tests::webhook::payment_succeeded;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_payment_that_beats_its_order_is_granted_once_the_order_exists() {
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let mut worker = env
        .start_worker(&[
            ("WORKER_RETRY_INITIAL_MS", "1500"),
            ("WORKER_RETRY_MULTIPLIER", "1"),
            ("WORKER_RETRY_ATTEMPTS", "20"),
        ])
        .await
        .unwrap();

    // The backend has not written its order yet, and the event has no metadata.
    let mut early = payment_succeeded("late-order", "ignored", "vip", "100.00");
    early["data"].as_object_mut().unwrap().remove("metadata");
    assert_eq!(ingester.send(&early).await.status, 200);
    let deadline = Instant::now() + WAIT;
    while scrape::sum(
        &worker.metrics().await,
        "ledgerhook_worker_retries_total",
        &["reason=\"order_unknown\""],
    ) < 1.0
    {
        assert!(
            Instant::now() < deadline,
            "the first attempt never happened"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // While it waits, other payments are not held up behind it.
    let other = payment_succeeded("on-time", "on-time-user", "starter", "10");
    let sent = Instant::now();
    assert_eq!(ingester.send(&other).await.status, 200);
    env.wait_for_count(
        "select count(*) from user_credits where user_id = 'on-time-user'",
        1,
        WAIT,
    )
    .await;
    assert!(
        sent.elapsed() < Duration::from_millis(1400),
        "granted before the waiting one's next attempt: {:?}",
        sent.elapsed()
    );

    // The waiting copy is in RabbitMQ, so a worker restart loses nothing.
    worker.restart().await.unwrap();
    env.create_order("late-order", "late-user", "vip").await;
    env.wait_all_processed(2, WAIT).await;

    assert_eq!(env.balance("late-user").await, 9600);
    assert_eq!(env.count("select count(*) from credit_ledger").await, 2);
    assert_eq!(
        env.count("select count(*) from webhook_deliveries where outcome = 'granted'")
            .await,
        2
    );
}
