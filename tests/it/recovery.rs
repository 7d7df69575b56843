//! Nothing accepted is lost when a part is away: the outbox publishes what
//! the broker never confirmed, workers retry through database errors, and
//! several processes may start at once against a database that does not
//! exist yet.

use std::time::Duration;

use futures_util::future::join_all;
use ledgerhook_tests::harness::{TestEnv, eventually, seen};
use ledgerhook_tests::scrape;
use ledgerhook_tests::webhook::payment_succeeded;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn deliveries_accepted_while_the_broker_is_unreachable_are_published_later() {
    let env = TestEnv::new().await.unwrap();
    // Nothing listens on port 1: every connection attempt fails at once.
    let cut_off = env
        .start_ingester(&[("AMQP_URL", "amqp://guest:guest@127.0.0.1:1/%2f")])
        .await
        .unwrap();
    let bodies: Vec<_> = (0..25)
        .map(|n| payment_succeeded(&format!("outbox-{n}"), "outbox-user", "starter", "10"))
        .collect();
    let answers = join_all(bodies.iter().map(|b| cut_off.send(b))).await;
    assert!(
        answers.iter().all(|a| a.status == 200),
        "accepted from the database record alone"
    );
    // Still ready: recording is what readiness means, and the outbox holds
    // what the broker has not confirmed.
    let ready = cut_off.get("/readyz").await;
    assert_eq!(
        (ready.status, &ready.body["broker"]),
        (200, &serde_json::json!(false))
    );
    assert_eq!(env.count("select count(*) from delivery_outbox").await, 25);
    drop(cut_off);

    // A healthy ingester's relay finds them; a worker grants them.
    let _ingester = env
        .start_ingester(&[
            ("OUTBOX_RELAY_GRACE_MS", "0"),
            ("OUTBOX_RELAY_INTERVAL_MS", "100"),
        ])
        .await
        .unwrap();
    let _worker = env.start_worker(&[]).await.unwrap();
    env.wait_all_processed(25, WAIT).await;
    env.wait_for_count("select count(*) from delivery_outbox", 0, WAIT)
        .await;
    assert_eq!(env.balance("outbox-user").await, 25 * 500);
}

#[tokio::test]
async fn a_worker_whose_database_connections_are_cut_retries_and_grants_each_order_once() {
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let bodies: Vec<_> = (0..300)
        .map(|n| {
            payment_succeeded(
                &format!("cut-{n}"),
                &format!("cut-user-{}", n % 7),
                "pro",
                "50",
            )
        })
        .collect();
    for chunk in bodies.chunks(50) {
        assert!(
            join_all(chunk.iter().map(|b| ingester.send(b)))
                .await
                .iter()
                .all(|a| a.status == 200)
        );
    }
    let worker = env
        .start_worker(&[
            ("WORKER_BATCH_SIZE", "8"),
            ("WORKER_RETRY_INITIAL_MS", "20"),
        ])
        .await
        .unwrap();

    // Cut every connection the worker holds, again and again, while it
    // works: each time as soon as it has connected again, until all is
    // processed.
    let processed = "select count(*) from webhook_deliveries where processed_at is not null";
    let mut cuts = 0;
    let mut last_cut: Option<chrono::DateTime<chrono::Utc>> = None;
    while cuts < 40 {
        let done = eventually(WAIT, async || {
            let reconnected: i64 = sqlx::query_scalar(
                "select count(*) from pg_stat_activity
                 where datname = current_database() and application_name = 'ledgerhook-worker'
                   and ($1::timestamptz is null or backend_start > $1)",
            )
            .bind(last_cut)
            .fetch_one(&env.pool)
            .await
            .map_err(|e| e.to_string())?;
            let done = env.count(processed).await;
            seen(done, reconnected > 0 || done == 300).map_err(|done| {
                format!("the worker has not connected since the last cut; {done} processed")
            })
        })
        .await;
        if done == 300 {
            break;
        }
        let (terminated, at): (i64, chrono::DateTime<chrono::Utc>) = sqlx::query_as(
            "select count(*), clock_timestamp() from (select pg_terminate_backend(pid) from pg_stat_activity
             where datname = current_database() and application_name = 'ledgerhook-worker') t",
        )
        .fetch_one(&env.pool)
        .await
        .unwrap();
        cuts += i64::from(terminated > 0);
        last_cut = Some(at);
    }
    env.wait_all_processed(300, WAIT).await;

    assert!(cuts > 0, "connections were cut");
    for user in 0..7 {
        let orders = (0..300).filter(|n| n % 7 == user).count() as i64;
        assert_eq!(
            env.balance(&format!("cut-user-{user}")).await,
            orders * 3300
        );
    }
    assert_eq!(env.count("select count(*) from credit_ledger").await, 300);
    let metrics = worker.metrics().await;
    assert!(
        scrape::sum(
            &metrics,
            "ledgerhook_worker_retries_total",
            &["reason=\"database\""]
        ) > 0.0,
        "the worker retried through the cuts"
    );
}

#[tokio::test]
async fn several_processes_starting_at_once_create_and_migrate_the_database_once() {
    let env = TestEnv::new().await.unwrap();
    // A database nobody has created yet, beside the test's own.
    let fresh = format!("{}_fresh", env.database_url);
    // Each logs the statements it runs, so the log shows who migrated.
    let extra = [
        ("DATABASE_URL", fresh.as_str()),
        ("RUST_LOG", "info,sqlx::query=debug"),
    ];
    let (ingester, first, second) = tokio::join!(
        env.start_ingester(&extra),
        env.start_worker(&extra),
        env.start_worker(&extra)
    );
    let (ingester, first, second) = (ingester.unwrap(), first.unwrap(), second.unwrap());
    let answer = ingester
        .send(&payment_succeeded("fresh-1", "fresh-user", "vip", "100"))
        .await;
    assert_eq!(answer.status, 200);

    let pool = sqlx::PgPool::connect(&fresh).await.unwrap();
    // Each migration recorded once, successfully, as the binaries know it.
    let recorded: Vec<(i64, bool, Vec<u8>)> =
        sqlx::query_as("select version, success, checksum from _sqlx_migrations order by version")
            .fetch_all(&pool)
            .await
            .unwrap();
    let known: Vec<(i64, bool, Vec<u8>)> = ledgerhook_store::db::MIGRATOR
        .iter()
        .map(|m| (m.version, true, m.checksum.to_vec()))
        .collect();
    assert_eq!(recorded, known);
    // And applied by exactly one of the three: each process logs the
    // statements it runs, and only one ran the migrations' bookkeeping.
    let applied: Vec<usize> = [&ingester.service, &first, &second]
        .iter()
        .map(|service| {
            service
                .log()
                .lines()
                .filter(|line| line.contains("summary=\"INSERT INTO _sqlx_migrations"))
                .count()
        })
        .collect();
    let mut sorted = applied.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [0, 0, known.len()],
        "migrations applied by (ingester, worker, worker): {applied:?}"
    );

    eventually(WAIT, async || {
        let balance: Option<i64> =
            sqlx::query_scalar("select balance from user_credits where user_id = 'fresh-user'")
                .fetch_optional(&pool)
                .await
                .map_err(|e| e.to_string())?;
        seen(balance, balance == Some(9600)).map_err(|b| format!("fresh-user's balance: {b}"))
    })
    .await;
    pool.close().await;
    drop(ingester);
    let admin = sqlx::PgPool::connect("postgres://postgres@127.0.0.1:5432/postgres")
        .await
        .unwrap();
    let name = fresh.rsplit('/').next().unwrap().to_owned();
    sqlx::query(&format!("drop database if exists {name} with (force)"))
        .execute(&admin)
        .await
        .unwrap();
}
