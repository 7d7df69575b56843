//! PostgreSQL failing over under a steady stream: a primary of the test's
//! own with a synchronous streaming standby (`pg_basebackup`, other ports),
//! the services given both in libpq's multi-host form with
//! `target_session_attrs=read-write`. The primary is killed (`pg_ctl -m
//! immediate`) and the standby promoted: the services find the new primary
//! themselves and resume within 10 s. A delivery answered 200 was on the
//! standby too (synchronous replication), so the load generator, which
//! resends what was refused meanwhile, finds every order granted once.

use std::time::Duration;

use ledgerhook_tests::harness::{TestEnv, eventually, seen};
use ledgerhook_tests::own_postgres::OwnPostgres;
use sqlx::PgPool;

const WAIT: Duration = Duration::from_secs(120);
/// The bound: the services resume within 10 s of the promotion.
const RESUME_WITHIN: Duration = Duration::from_secs(10);

#[tokio::test]
async fn the_primary_killed_and_its_standby_promoted_the_services_follow_within_10s() {
    let (primary, standby) = tokio::task::spawn_blocking(|| {
        let primary = OwnPostgres::start_primary()?;
        let standby = OwnPostgres::standby_of(&primary)?;
        anyhow::Ok((primary, standby))
    })
    .await
    .unwrap()
    .unwrap();
    let mut env = TestEnv::on(&primary.url("postgres")).await.unwrap();
    let sync: Vec<String> = sqlx::query_scalar("select sync_state from pg_stat_replication")
        .fetch_all(&env.pool)
        .await
        .unwrap();
    assert_eq!(sync, ["sync"], "the standby is synchronous");
    let database = env
        .database_url
        .rsplit_once('/')
        .map(|(_, name)| name.to_owned())
        .unwrap();
    let on_standby = standby.url(&database);
    env.database_url = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/{database}?target_session_attrs=read-write",
        primary.port, standby.port
    );
    let ingester = env
        .start_ingester(&[("OUTBOX_RELAY_INTERVAL_MS", "200")])
        .await
        .unwrap();
    let _worker = env.start_worker(&[]).await.unwrap();

    // The load generator only reads: the standby serves it throughout. It
    // resends what the ingester refuses while no primary answers.
    env.database_url.clone_from(&on_standby);
    let load = env.loadgen(
        &ingester,
        &[
            "--count",
            "3000",
            "--concurrency",
            "8",
            "--rate",
            "150",
            "--duplicates",
            "1",
            "--retry-refused",
            "--wait-timeout-secs",
            "180",
        ],
    );
    let standby_pool = PgPool::connect(&on_standby).await.unwrap();
    let processed = async || -> i64 {
        sqlx::query_scalar("select count(*) from webhook_deliveries where processed_at is not null")
            .fetch_one(&standby_pool)
            .await
            .unwrap_or(0)
    };
    eventually(WAIT, async || {
        let done = processed().await;
        seen(done, done >= 300)
    })
    .await;

    let primary = tokio::task::spawn_blocking(move || {
        primary.stop().unwrap();
        std::thread::sleep(Duration::from_secs(1));
        primary
    })
    .await
    .unwrap();
    let standby = tokio::task::spawn_blocking(move || {
        standby.promote().unwrap();
        standby
    })
    .await
    .unwrap();
    let promoted_at: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("select now()")
        .fetch_one(&standby_pool)
        .await
        .unwrap();
    let resumed = eventually(WAIT, async || {
        let resumed: Option<f64> = sqlx::query_scalar(
            "select extract(epoch from min(processed_at) - $1)::float8 from webhook_deliveries
             where received_at > $1 and processed_at is not null",
        )
        .bind(promoted_at)
        .fetch_one(&standby_pool)
        .await
        .unwrap_or(None);
        seen(resumed, resumed.is_some())
    })
    .await
    .unwrap();
    println!("standby promoted: a delivery received after it granted {resumed:.2} s later");
    assert!(
        resumed < RESUME_WITHIN.as_secs_f64(),
        "the services resumed {resumed:.2} s after the promotion"
    );
    assert!(
        ingester.service.log().contains("the writable host changed"),
        "the ingester moved its pool"
    );

    let (ok, output) = load.await.unwrap();
    assert!(ok, "the load generator found a problem:\n{output}");
    println!("{output}");
    drop((primary, standby));
}
