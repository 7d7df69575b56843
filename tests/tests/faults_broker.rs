//! RabbitMQ unreachable while deliveries arrive: every connection to it cut
//! and refused for a while, through a forwarder of the test's own (the
//! shared broker keeps running for other tests). The ingester keeps
//! answering 200 from its database record, both processes reconnect by
//! themselves, the outbox publishes what waited, and each order is granted
//! once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use ledgerhook_tests::harness::TestEnv;
use ledgerhook_tests::severable::Severable;
use ledgerhook_tests::webhook::payment_succeeded;
use tokio::sync::Semaphore;

const DELIVERIES: usize = 400;
const WAIT: Duration = Duration::from_secs(120);

#[tokio::test]
async fn the_broker_cut_off_under_load_loses_nothing_and_grants_once() {
    let env = TestEnv::new().await.unwrap();
    let broker = Severable::to("127.0.0.1:5672".parse().unwrap())
        .await
        .unwrap();
    let amqp_url = format!("amqp://guest:guest@{}/%2f", broker.addr);
    let ingester = Arc::new(
        env.start_ingester(&[
            ("AMQP_URL", &amqp_url),
            ("OUTBOX_RELAY_GRACE_MS", "1000"),
            ("OUTBOX_RELAY_INTERVAL_MS", "200"),
        ])
        .await
        .unwrap(),
    );
    let _worker = env.start_worker(&[("AMQP_URL", &amqp_url)]).await.unwrap();

    let slots = Arc::new(Semaphore::new(16));
    let sending = tokio::spawn({
        let ingester = ingester.clone();
        async move {
            join_all((0..DELIVERIES).map(|n| {
                let (ingester, slots) = (ingester.clone(), slots.clone());
                async move {
                    let _slot = slots.acquire().await.unwrap();
                    let body = payment_succeeded(
                        &format!("cut-{n}"),
                        &format!("cut-user-{}", n % 9),
                        "starter",
                        "10",
                    );
                    ingester.send(&body).await.status
                }
            }))
            .await
        }
    });

    let deadline = Instant::now() + WAIT;
    while env.count("select count(*) from webhook_deliveries").await < 80 {
        assert!(Instant::now() < deadline, "deliveries never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    broker.sever();
    // While it is away, readiness reports it but stays ready: the outbox
    // exists to absorb exactly this, so no ingester leaves the rotation.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready = ingester.get("/readyz").await;
        if ready.body["broker"] == false {
            assert_eq!(ready.status, 200, "{ready:?}");
            assert_eq!(ready.body["database"], true);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "readiness never noticed: {ready:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The backlog shows in the ingester's metrics while the broker is away.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = ingester.service.metrics().await;
        if ledgerhook_tests::scrape::sum(&metrics, "ledgerhook_outbox_unpublished", &[]) > 0.0 {
            assert_eq!(
                ledgerhook_tests::scrape::sum(&metrics, "ledgerhook_broker_connected", &[]),
                0.0
            );
            break;
        }
        assert!(Instant::now() < deadline, "the backlog gauge never rose");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    broker.restore();

    let statuses = sending.await.unwrap();
    assert!(
        statuses.iter().all(|s| *s == 200),
        "every delivery accepted during the outage too"
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
        DELIVERIES as i64 * 500
    );
    assert_eq!(
        env.count("select count(*) from webhook_deliveries where outcome <> 'granted'")
            .await,
        0
    );
    let ready = ingester.get("/readyz").await;
    assert_eq!(
        (ready.status, &ready.body["broker"]),
        (200, &serde_json::json!(true)),
        "the publisher is back"
    );
}

#[tokio::test]
async fn an_unroutable_publish_is_a_failure_kept_in_the_outbox_until_it_can_be_routed() {
    let env = TestEnv::new().await.unwrap();
    let ingester = env
        .start_ingester(&[
            ("OUTBOX_RELAY_GRACE_MS", "500"),
            ("OUTBOX_RELAY_INTERVAL_MS", "200"),
        ])
        .await
        .unwrap();
    // Once the publisher has connected (and declared the topology), remove
    // the work queue: nothing is bound to the exchange, so every publish
    // comes back unroutable.
    let deadline = Instant::now() + WAIT;
    while ingester.get("/readyz").await.body["broker"] != true {
        assert!(Instant::now() < deadline, "the publisher never connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let topology = ledgerhook_shared::amqp::Topology::new(&env.queue_prefix);
    let connection = ledgerhook_shared::amqp::connect(&env.amqp_url, "ledgerhook-tests")
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .queue_delete(topology.queue.as_str().into(), Default::default())
        .await
        .unwrap();

    for n in 0..5 {
        let body = payment_succeeded(&format!("unroutable-{n}"), "unroutable-user", "vip", "100");
        assert_eq!(ingester.send(&body).await.status, 200);
    }
    let deadline = Instant::now() + WAIT;
    loop {
        let metrics = ingester.service.metrics().await;
        let failures = ledgerhook_tests::scrape::sum(
            &metrics,
            "ledgerhook_outbox_publish_failures_total",
            &["reason=\"rejected\""],
        );
        if failures >= 5.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "returned publishes were not counted as failures"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        env.count("select count(*) from delivery_outbox").await,
        5,
        "kept for the relay"
    );

    // A worker declares the queue again; the relay's next try is routed.
    let _worker = env.start_worker(&[]).await.unwrap();
    env.wait_all_processed(5, WAIT).await;
    env.wait_for_count("select count(*) from delivery_outbox", 0, WAIT)
        .await;
    assert_eq!(env.balance("unroutable-user").await, 5 * 9600);
}
