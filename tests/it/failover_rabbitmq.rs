//! A three-node RabbitMQ cluster of the test's own (own node names, ports,
//! data and cookie), the services given all three URLs, a steady stream of
//! payments with duplicates from the load generator. Faults, each run once:
//! the work queue's leader killed with `kill -9` and never brought back.
//! Measured: the time from the fault until a delivery received after it is
//! granted. Always: nothing lost, nothing granted twice (the load generator
//! checks the ledger's invariant and that every order granted once).
//!
//! One cluster, one stream, the faults in turn (each needs a majority of
//! the three nodes, so the killed node is restarted before the next):
//! 1. the work queue's leader killed with `kill -9`: grants resume within
//!    5 s, without it coming back;
//! 2. the (new) leader frozen with SIGSTOP for 20 s: grants stall at most
//!    15 s;
//! 3. a rolling restart of all three nodes, one after another.

use std::time::{Duration, Instant};

use ledgerhook_runtime::amqp::Topology;
use ledgerhook_tests::harness::{TestEnv, eventually, seen};
use ledgerhook_tests::own_cluster::OwnCluster;

const WAIT: Duration = Duration::from_secs(120);
/// The bounds: grants again within 5 s of the leader's death, and
/// at most 15 s of stall while a leader hangs for 20 s.
const RESUME_WITHIN: Duration = Duration::from_secs(5);
const HUNG_STALL_AT_MOST: Duration = Duration::from_secs(15);
const HUNG_FOR: Duration = Duration::from_secs(20);

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
async fn a_clusters_leader_killed_hung_and_every_node_restarted_loses_and_doubles_nothing() {
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
    // 150 payments a second for 100 s, each sent twice under two ids.
    let load = env.loadgen(
        &ingester,
        &[
            "--count",
            "15000",
            "--concurrency",
            "8",
            "--rate",
            "150",
            "--duplicates",
            "1",
            "--wait-timeout-secs",
            "180",
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

    // The killed node comes back (a majority is needed for what follows).
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.start_node(leader).unwrap();
        cluster
            .ctl(&cluster.nodes[leader].name, &["await_startup"])
            .unwrap();
        cluster
    })
    .await
    .unwrap();

    // 2. The leader hangs for 20 s.
    let leader = cluster.leader_of(&queue, (leader + 1) % 3).unwrap();
    let frozen_at = database_now(&env).await;
    cluster.signal(leader, "STOP").unwrap();
    let stalled = eventually(HUNG_FOR + WAIT, async || {
        let resumed = resumed_after(&env, frozen_at).await;
        seen(resumed, resumed.is_some())
    })
    .await
    .unwrap();
    let thaw_in = HUNG_FOR.saturating_sub(Duration::from_secs_f64(stalled));
    tokio::time::sleep(thaw_in).await;
    cluster.signal(leader, "CONT").unwrap();
    println!(
        "leader {} frozen for {HUNG_FOR:?}: grants stalled {stalled:.2} s",
        cluster.nodes[leader].name
    );
    assert!(
        stalled <= HUNG_STALL_AT_MOST.as_secs_f64(),
        "grants stalled {stalled:.2} s while the leader hung"
    );

    // 3. Every node restarted in turn, the stream going on.
    let restarted_at = database_now(&env).await;
    let _cluster = tokio::task::spawn_blocking(move || {
        for index in 0..cluster.nodes.len() {
            cluster.stop_node(index).unwrap();
            std::thread::sleep(Duration::from_secs(2));
            cluster.start_node(index).unwrap();
            cluster
                .ctl(&cluster.nodes[index].name, &["await_startup"])
                .unwrap();
        }
        cluster
    })
    .await
    .unwrap();
    let restart_done_at = database_now(&env).await;
    let during = env
        .count(&format!(
            "select count(*) from webhook_deliveries where received_at > '{restarted_at}' and processed_at is not null"
        ))
        .await;
    // The longest pause in grants while the nodes restarted one by one.
    let longest_gap: Option<f64> = sqlx::query_scalar(
        "select extract(epoch from max(gap))::float8 from (
             select processed_at - lag(processed_at) over (order by processed_at) as gap
             from webhook_deliveries where processed_at > $1 and processed_at <= $2
         ) gaps",
    )
    .bind(restarted_at)
    .bind(restart_done_at)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    println!(
        "rolling restart: {during} deliveries received since it began were granted meanwhile; the longest pause in grants {:.2} s",
        longest_gap.unwrap_or(0.0)
    );
    assert!(during > 0, "nothing was granted during the rolling restart");

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
