//! A three-node RabbitMQ cluster of the test's own (own node names, ports,
//! data and cookie), the services given all three URLs, a steady stream of
//! payments with duplicates from the load generator. Faults, each run once:
//! the work queue's leader killed with `kill -9` and never brought back.
//! Measured: the time from the fault until a delivery received after it is
//! granted. Always: nothing lost, nothing granted twice (the load generator
//! checks the ledger's invariant and that every order granted once).

use std::time::{Duration, Instant};

use ledgerhook_runtime::amqp::Topology;
use ledgerhook_tests::harness::{TestEnv, eventually, seen};
use ledgerhook_tests::own_cluster::OwnCluster;

const WAIT: Duration = Duration::from_secs(120);
/// The bound: grants again within 5 s of the leader's death.
const RESUME_WITHIN: Duration = Duration::from_secs(5);

/// Seconds from `since` (the database's clock) until the first delivery
/// received after it was processed; `None` until one is.
async fn resumed_after(env: &TestEnv, since: chrono::DateTime<chrono::Utc>) -> Option<f64> {
    sqlx::query_scalar::<_, Option<f64>>(
        "select extract(epoch from min(processed_at) - $1)::float8 from webhook_deliveries
         where received_at > $1 and processed_at is not null",
    )
    .bind(since)
    .fetch_one(&env.pool)
    .await
    .unwrap()
}

async fn database_now(env: &TestEnv) -> chrono::DateTime<chrono::Utc> {
    sqlx::query_scalar("select now()")
        .fetch_one(&env.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_work_queues_leader_killed_for_good_grants_resume_within_5s() {
    let cluster = tokio::task::spawn_blocking(|| OwnCluster::start(3))
        .await
        .unwrap()
        .unwrap();
    let mut env = TestEnv::new().await.unwrap();
    env.amqp_url = cluster.urls();
    let ingester = env
        .start_ingester(&[
            ("OUTBOX_RELAY_GRACE_MS", "1000"),
            ("OUTBOX_RELAY_INTERVAL_MS", "200"),
        ])
        .await
        .unwrap();
    let workers = [
        env.start_worker(&[]).await.unwrap(),
        env.start_worker(&[]).await.unwrap(),
    ];
    // 150 payments a second for 10 s, each sent twice under two ids.
    let load = env.loadgen(
        &ingester,
        &[
            "--count",
            "1500",
            "--concurrency",
            "8",
            "--rate",
            "150",
            "--duplicates",
            "1",
            "--wait-timeout-secs",
            "120",
        ],
    );
    eventually(WAIT, async || {
        let processed = env
            .count("select count(*) from webhook_deliveries where processed_at is not null")
            .await;
        seen(processed, processed >= 200)
    })
    .await;

    let queue = Topology::new(&env.queue_prefix).queue;
    let leader = cluster.leader_of(&queue, 0).unwrap();
    let killed_at = database_now(&env).await;
    let started = Instant::now();
    cluster.signal(leader, "KILL").unwrap();
    let resumed = eventually(WAIT, async || {
        let resumed = resumed_after(&env, killed_at).await;
        seen(resumed, resumed.is_some())
    })
    .await
    .unwrap();
    println!(
        "leader {} killed: a delivery received after it granted {resumed:.2} s later (seen after {:.1} s)",
        cluster.nodes[leader].name,
        started.elapsed().as_secs_f64()
    );
    assert!(
        resumed < RESUME_WITHIN.as_secs_f64(),
        "grants resumed {resumed:.2} s after the leader died"
    );

    let (ok, output) = load.await.unwrap();
    assert!(ok, "the load generator found a problem:\n{output}");
    println!("{output}");
    let nacks = ingester
        .service
        .metric(
            "ledgerhook_outbox_publish_failures_total",
            &["reason=\"rejected\""],
        )
        .await;
    println!("publishes refused (nack) while the cluster elected a new leader: {nacks}");
    drop(workers);
    // The cluster goes with its queues: nothing for the cleanup to remove
    // there (and a dead node would make it wait).
    env.amqp_url = ledgerhook_runtime::config::DEFAULT_AMQP_URL.to_owned();
}
