//! RabbitMQ stopped and restarted while the load generator sends, on a node
//! of the test's own. The ingester and the worker reconnect without a
//! restart, durable queues keep what they held, and each order is granted
//! once (the load generator checks the ledger invariant itself). Then the
//! broker is stopped a second time and deliveries are sent while it is
//! down: they are accepted, wait in the outbox, and are published and
//! granted once it is back.

use std::time::Duration;

use ledgerhook_runtime::amqp::Topology;
use ledgerhook_tests::harness::{TestEnv, eventually, seen};
use ledgerhook_tests::own_rabbitmq::OwnRabbitMq;
use ledgerhook_tests::webhook::{payment_succeeded, price_of};

const DELIVERIES: i64 = 600;
const WAIT: Duration = Duration::from_secs(120);
/// Deliveries sent while the broker is down the second time.
const DURING_OUTAGE: i64 = 20;

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
    let worker = env
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

    // Stop the broker once its queue holds messages the worker has not
    // taken yet. The worker, once it has granted some, is frozen: applying
    // whole carriers, it keeps up with this load, and would drain the queue
    // in the seconds a stop takes. It is thawed after the broker is back,
    // and must find its way.
    eventually(WAIT, async || {
        let granted = env
            .count("select count(*) from webhook_deliveries where processed_at is not null")
            .await;
        seen(granted, granted >= 50).map_err(|granted| format!("{granted} processed"))
    })
    .await;
    worker.freeze().unwrap();
    let queue = Topology::new(&env.queue_prefix).queue;
    eventually(WAIT, async || {
        let depth = env.queue_depth(&queue).await.map_err(|e| e.to_string())?;
        seen(depth, depth >= 10).map_err(|depth| format!("{depth} messages ready in {queue}"))
    })
    .await;
    broker.stop().unwrap();
    // What the stopped broker holds: deliveries it confirmed (their outbox
    // rows are gone) and the worker has not processed. No confirm and no
    // acknowledgement can happen now, so this cannot overcount.
    let held_across_the_restart = env
        .count(
            "select count(*) from webhook_deliveries d where processed_at is null
             and not exists (select 1 from delivery_outbox o where o.delivery_row = d.id)",
        )
        .await;
    eprintln!(
        "when the broker stopped: {held_across_the_restart} deliveries held by it, {} recorded, {} in the outbox",
        env.count("select count(*) from webhook_deliveries").await,
        env.count("select count(*) from delivery_outbox").await
    );
    // The ingester notices the broker is gone; then it comes back.
    eventually(WAIT, async || {
        let ready = ingester.get("/readyz").await;
        seen(
            ready.body.clone(),
            ready.status == 200 && ready.body["broker"] == false,
        )
    })
    .await;
    broker.resume().unwrap();
    worker.thaw().unwrap();
    let ingester_is_back = async || {
        let ready = ingester.get("/readyz").await;
        seen(ready.body.clone(), ready.body["broker"] == true)
    };

    let (ok, output) = load.await.unwrap();
    assert!(
        ok,
        "every delivery accepted, broker or not, and the invariant holds: {output}"
    );
    assert!(output.contains("invariant holds"), "{output}");
    assert!(
        held_across_the_restart > 0,
        "messages were waiting in the broker across the restart"
    );
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

    // Second outage, with deliveries sent only while the broker is down.
    eventually(WAIT, ingester_is_back).await;
    broker.stop().unwrap();
    for i in 0..DURING_OUTAGE {
        let body = payment_succeeded(
            &format!("cm-outage-{i}"),
            "user-outage",
            "starter",
            &price_of("starter"),
        );
        let answer = ingester.send(&body).await;
        assert_eq!(
            answer.status, 200,
            "accepted with the broker down: {answer:?}"
        );
    }
    assert_eq!(
        env.count("select count(*) from delivery_outbox").await,
        DURING_OUTAGE,
        "every delivery sent during the outage waits in the outbox"
    );
    broker.resume().unwrap();
    env.wait_for_count("select count(*) from delivery_outbox", 0, WAIT)
        .await;
    env.wait_all_processed(DELIVERIES + DURING_OUTAGE, WAIT)
        .await;
    assert_eq!(
        env.count("select count(*) from credit_ledger where user_id = 'user-outage'")
            .await,
        DURING_OUTAGE,
        "each order sent during the outage granted once"
    );
}
