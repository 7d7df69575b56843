//! RabbitMQ stopped and restarted while the load generator sends, on a node
//! of the test's own. Deliveries are still accepted, the ingester and the
//! worker reconnect without a restart, durable queues keep what they held,
//! the outbox publishes what waited, and each order is granted once (the
//! load generator checks the ledger invariant itself).

use std::time::{Duration, Instant};

use ledgerhook_tests::harness::TestEnv;
use ledgerhook_tests::own_rabbitmq::OwnRabbitMq;

const DELIVERIES: i64 = 600;
const WAIT: Duration = Duration::from_secs(120);

#[tokio::test]
async fn a_broker_restarted_under_load_loses_nothing_and_grants_once() {
    let broker = OwnRabbitMq::start().unwrap();
    let mut env = TestEnv::new().await.unwrap();
    env.amqp_url = broker.url();
    let ingester = env
        .start_ingester(&[
            ("OUTBOX_RELAY_GRACE_MS", "1000"),
            ("OUTBOX_RELAY_INTERVAL_MS", "200"),
        ])
        .await
        .unwrap();
    // A slow worker, so the queue holds messages when the broker stops.
    let _worker = env
        .start_worker(&[("WORKER_CONCURRENCY", "1"), ("WORKER_BATCH_SIZE", "1")])
        .await
        .unwrap();
    let load = env.loadgen(
        &ingester,
        &[
            "--count",
            "600",
            "--concurrency",
            "16",
            "--rate",
            "600",
            "--wait-timeout-secs",
            "120",
        ],
    );

    let deadline = Instant::now() + WAIT;
    while env.count("select count(*) from webhook_deliveries").await < 150 {
        assert!(Instant::now() < deadline, "deliveries never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let waiting = env
        .count("select count(*) from webhook_deliveries where processed_at is null")
        .await;
    broker.stop().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    broker.resume().unwrap();

    let (ok, output) = load.await.unwrap();
    assert!(
        ok,
        "every delivery accepted, broker or not, and the invariant holds: {output}"
    );
    assert!(output.contains("invariant holds"), "{output}");
    assert!(waiting > 0, "messages were waiting across the restart");
    env.wait_for_count("select count(*) from delivery_outbox", 0, WAIT)
        .await;
    assert_eq!(
        env.count("select count(*) from webhook_deliveries").await,
        DELIVERIES
    );
    assert_eq!(
        env.count("select count(*) from webhook_deliveries where outcome <> 'granted'")
            .await,
        0
    );
}
