//! RabbitMQ unreachable while deliveries arrive: every connection to it cut
//! and refused for a while, through a forwarder of the test's own (the
//! shared broker keeps running for other tests). The ingester keeps
//! answering 200 from its database record, both processes reconnect by
//! themselves, the outbox publishes what waited, and each order is granted
//! once.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use ledgerhook_tests::harness::{TestEnv, eventually, seen};
use ledgerhook_tests::scrape;
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

    eventually(WAIT, async || {
        let recorded = env.count("select count(*) from webhook_deliveries").await;
        seen(recorded, recorded >= 80).map_err(|n| format!("{n} deliveries recorded"))
    })
    .await;
    broker.sever();
    // While it is away, readiness reports it but stays ready: the outbox
    // exists to absorb exactly this, so no ingester leaves the rotation.
    let ready = eventually(Duration::from_secs(10), async || {
        let ready = ingester.get("/readyz").await;
        seen(ready.body.clone(), ready.body["broker"] == false).map(|_| ready)
    })
    .await;
    assert_eq!(ready.status, 200, "{ready:?}");
    assert_eq!(ready.body["database"], true);
    // The backlog shows in the ingester's metrics while the broker is away.
    let metrics = eventually(Duration::from_secs(10), async || {
        let metrics = ingester.service.metrics().await;
        let backlog = scrape::sum(&metrics, "ledgerhook_outbox_unpublished", &[]);
        seen(backlog, backlog > 0.0)
            .map(|_| metrics)
            .map_err(|backlog| format!("outbox backlog {backlog}"))
    })
    .await;
    assert_eq!(
        scrape::sum(&metrics, "ledgerhook_broker_connected", &[]),
        0.0
    );
    // It comes back once the processes have tried to reconnect and been
    // refused, so what is tested next is their reconnecting by themselves.
    eventually(WAIT, async || {
        let refused = broker.refused();
        seen(refused, refused >= 2).map_err(|n| format!("{n} reconnection attempts refused"))
    })
    .await;
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
    eventually(WAIT, async || {
        let ready = ingester.get("/readyz").await;
        {
            let connected = ready.body["broker"] == true;
            seen(ready.body, connected)
        }
    })
    .await;
    let topology = ledgerhook_runtime::amqp::Topology::new(&env.queue_prefix);
    let connection = ledgerhook_runtime::amqp::connect(&env.amqp_url, "ledgerhook-tests")
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
    eventually(WAIT, async || {
        let failures = ingester
            .service
            .metric(
                "ledgerhook_outbox_publish_failures_total",
                &["reason=\"rejected\""],
            )
            .await;
        seen(failures, failures >= 5.0)
            .map_err(|failures| format!("{failures} returned publishes counted as failures"))
    })
    .await;
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

/// A broker that refuses every publish (a full queue that rejects them, as
/// a cluster refuses after losing a node): the ingester is not ready, its
/// broker gauge reads 0, and the deliveries wait in the outbox; once the
/// broker takes publishes again, the ingester is ready, and each is granted
/// once.
#[tokio::test]
async fn while_the_broker_refuses_publishes_the_ingester_is_not_ready_and_keeps_them() {
    let broker = ledgerhook_tests::own_rabbitmq::OwnRabbitMq::start().unwrap();
    let mut env = TestEnv::new().await.unwrap();
    env.amqp_url = broker.url();
    let ingester = env
        .start_ingester(&[
            ("OUTBOX_RELAY_GRACE_MS", "500"),
            ("OUTBOX_RELAY_INTERVAL_MS", "200"),
        ])
        .await
        .unwrap();
    eventually(WAIT, async || {
        let ready = ingester.get("/readyz").await;
        let connected = ready.body["broker"] == true;
        seen(ready.body, connected)
    })
    .await;
    let queue = ledgerhook_runtime::amqp::Topology::new(&env.queue_prefix).queue;
    broker
        .ctl(&[
            "set_policy",
            "full",
            &format!("^{}$", queue.replace('.', "\\.")),
            r#"{"max-length":0,"overflow":"reject-publish"}"#,
            "--apply-to",
            "queues",
        ])
        .unwrap();
    // The policy takes effect asynchronously: wait until the queue has it.
    eventually(WAIT, async || {
        let listed = broker
            .ctl(&["-q", "--no-table-headers", "list_queues", "name", "policy"])
            .unwrap_or_default();
        let applied = listed
            .lines()
            .any(|line| line.starts_with(queue.as_str()) && line.ends_with("full"));
        seen(listed, applied)
    })
    .await;
    for n in 0..3 {
        let body = payment_succeeded(&format!("refused-{n}"), "refused-user", "starter", "10");
        assert_eq!(
            ingester.send(&body).await.status,
            200,
            "recorded, so accepted"
        );
    }
    eventually(WAIT, async || {
        let ready = ingester.get("/readyz").await;
        let gauge = ingester
            .service
            .metric("ledgerhook_broker_connected", &[])
            .await;
        let refused = ready.status == 503
            && ready.body["refusing"] == true
            && ready.body["broker"] == false
            && gauge == 0.0;
        seen((ready.status, gauge), refused)
    })
    .await;
    // Still not ready a moment later: reconnecting does not make it so.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(ingester.get("/readyz").await.status, 503);
    // A quorum queue's length limit is soft (the message that reaches it is
    // still taken): the rest wait in the outbox, for the relay.
    let waiting = env.count("select count(*) from delivery_outbox").await;
    assert!((2..=3).contains(&waiting), "{waiting} in the outbox");

    broker.ctl(&["clear_policy", "full"]).unwrap();
    let _worker = env.start_worker(&[]).await.unwrap();
    env.wait_all_processed(3, WAIT).await;
    eventually(WAIT, async || {
        let ready = ingester.get("/readyz").await;
        seen(ready.status, ready.status == 200)
    })
    .await;
    assert_eq!(env.balance("refused-user").await, 3 * 500);
    env.amqp_url = ledgerhook_runtime::config::DEFAULT_AMQP_URL.to_owned();
}
