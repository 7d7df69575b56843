//! RabbitMQ stopped and restarted while deliveries arrive, on a node of the
//! test's own. Deliveries are still accepted, the ingester and the worker
//! reconnect without a restart, durable queues keep what they held, the
//! outbox publishes what waited, and each order is granted once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use ledgerhook_tests::harness::TestEnv;
use ledgerhook_tests::own_rabbitmq::OwnRabbitMq;
use ledgerhook_tests::webhook::payment_succeeded;
use tokio::sync::Semaphore;

const DELIVERIES: usize = 400;
const WAIT: Duration = Duration::from_secs(120);

#[tokio::test]
async fn a_broker_restarted_under_load_loses_nothing_and_grants_once() {
    let broker = OwnRabbitMq::start().unwrap();
    let mut env = TestEnv::new().await.unwrap();
    env.amqp_url = broker.url();
    let ingester = Arc::new(
        env.start_ingester(&[
            ("OUTBOX_RELAY_GRACE_MS", "1000"),
            ("OUTBOX_RELAY_INTERVAL_MS", "200"),
        ])
        .await
        .unwrap(),
    );
    // A slow worker, so the queue holds messages when the broker stops.
    let _worker = env
        .start_worker(&[("WORKER_CONCURRENCY", "1"), ("WORKER_BATCH_SIZE", "1")])
        .await
        .unwrap();

    let slots = Arc::new(Semaphore::new(16));
    let sending = tokio::spawn({
        let ingester = ingester.clone();
        async move {
            join_all((0..DELIVERIES).map(|n| {
                let (ingester, slots) = (ingester.clone(), slots.clone());
                async move {
                    let _slot = slots.acquire().await.unwrap();
                    let body = payment_succeeded(
                        &format!("restart-{n}"),
                        &format!("restart-user-{}", n % 7),
                        "pro",
                        "50",
                    );
                    ingester.send(&body).await.status
                }
            }))
            .await
        }
    });

    let deadline = Instant::now() + WAIT;
    while env.count("select count(*) from webhook_deliveries").await < 150 {
        assert!(Instant::now() < deadline, "deliveries never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let queued_before_stop = env.count("select count(*) from webhook_deliveries").await
        - env
            .count("select count(*) from webhook_deliveries where processed_at is not null")
            .await;
    broker.stop().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    broker.resume().unwrap();

    let statuses = sending.await.unwrap();
    assert!(
        statuses.iter().all(|s| *s == 200),
        "every delivery accepted, broker or not"
    );
    assert!(
        queued_before_stop > 0,
        "the queue held messages across the restart"
    );
    env.wait_all_processed(DELIVERIES as i64, WAIT).await;
    env.wait_for_count("select count(*) from delivery_outbox", 0, WAIT)
        .await;
    assert_eq!(
        env.count("select count(*) from credit_ledger").await,
        DELIVERIES as i64
    );
    assert_eq!(
        env.count("select coalesce(sum(balance), 0)::int8 from user_credits")
            .await,
        DELIVERIES as i64 * 3300
    );
    assert_eq!(
        env.count("select count(*) from webhook_deliveries where outcome <> 'granted'")
            .await,
        0
    );
}
