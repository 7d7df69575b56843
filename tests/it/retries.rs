//! Retries wait in RabbitMQ, not in a worker: a payment whose order appears
//! late is granted on a later attempt, other messages flow meanwhile, and a
//! waiting message survives a worker restart.

use std::time::Duration;

use ledgerhook_runtime::amqp::Topology;
use ledgerhook_tests::harness::{TestEnv, eventually, seen};
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
            // One at a time: the other payment gets through only if the
            // waiting one has left the worker.
            ("WORKER_CONCURRENCY", "1"),
        ])
        .await
        .unwrap();

    // The backend has not written its order yet, and the event has no metadata.
    let mut early = payment_succeeded("late-order", "ignored", "vip", "100.00");
    early["data"].as_object_mut().unwrap().remove("metadata");
    assert_eq!(ingester.send(&early).await.status, 200);
    eventually(WAIT, async || {
        let retries = worker
            .metric(
                "ledgerhook_worker_retries_total",
                &["reason=\"order_unknown\""],
            )
            .await;
        seen(retries, retries >= 1.0).map_err(|r| format!("order_unknown retries: {r}"))
    })
    .await;

    // While it waits, other payments are not held up behind it: one is
    // granted while the first is still waiting (it cannot be granted before
    // its order exists, and is given up on only after 20 attempts, so a
    // worker that held it would grant the second only after parking it).
    let other = payment_succeeded("on-time", "on-time-user", "starter", "10");
    assert_eq!(ingester.send(&other).await.status, 200);
    env.wait_for_count(
        "select count(*) from user_credits where user_id = 'on-time-user'",
        1,
        WAIT,
    )
    .await;
    assert_eq!(
        env.count("select count(*) from webhook_deliveries where processed_at is null")
            .await,
        1,
        "the early payment is still waiting when the other one is granted"
    );
    assert_eq!(
        worker.metric("ledgerhook_parked_total", &[]).await,
        0.0,
        "nothing was given up on"
    );
    // The waiting copy is in RabbitMQ, so a worker restart loses nothing.
    let wait_queue = Topology::new(&env.queue_prefix).wait_queue(Duration::from_millis(1500));
    eventually(WAIT, async || {
        let depth = env
            .queue_depth(&wait_queue)
            .await
            .map_err(|e| e.to_string())?;
        seen(depth, depth == 1).map_err(|d| format!("{d} messages in {wait_queue}"))
    })
    .await;
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
