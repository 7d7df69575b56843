//! Nothing accepted is lost when a part is away: the outbox publishes what
//! the broker never confirmed, workers retry through database errors, and
//! several processes may start at once against a database that does not
//! exist yet.

use std::time::Duration;

use futures_util::future::join_all;
use ledgerhook_tests::harness::TestEnv;
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

    // Cut every connection the worker holds, again and again, while it works.
    let processed = "select count(*) from webhook_deliveries where processed_at is not null";
    let mut cuts = 0;
    while env.count(processed).await < 300 && cuts < 40 {
        let terminated: i64 = sqlx::query_scalar(
            "select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity
             where datname = current_database() and application_name = 'ledgerhook-worker') t",
        )
        .fetch_one(&env.pool)
        .await
        .unwrap_or(0);
        cuts += i64::from(terminated > 0);
        tokio::time::sleep(Duration::from_millis(30)).await;
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
    let extra = [("DATABASE_URL", fresh.as_str())];
    let (ingester, first, second) = tokio::join!(
        env.start_ingester(&extra),
        env.start_worker(&extra),
        env.start_worker(&extra)
    );
    let (ingester, _first, _second) = (ingester.unwrap(), first.unwrap(), second.unwrap());
    let answer = ingester
        .send(&payment_succeeded("fresh-1", "fresh-user", "vip", "100"))
        .await;
    assert_eq!(answer.status, 200);

    let pool = sqlx::PgPool::connect(&fresh).await.unwrap();
    let migrations: i64 = sqlx::query_scalar("select count(*) from _sqlx_migrations where success")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        migrations,
        ledgerhook_shared::db::MIGRATOR.iter().count() as i64
    );
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let balance: Option<i64> =
            sqlx::query_scalar("select balance from user_credits where user_id = 'fresh-user'")
                .fetch_optional(&pool)
                .await
                .unwrap();
        if balance == Some(9600) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never granted: {balance:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
