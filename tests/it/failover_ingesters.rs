//! Two ingesters behind a balancer (tests/src/balancer.rs: round-robin,
//! skipping a backend that refuses), a steady stream with duplicates, and
//! one ingester killed with `kill -9`: the sender's retries land on the
//! other, and every order is granted once. Measured: from the kill until a
//! delivery received after it is granted.

use std::time::Duration;

use ledgerhook_tests::balancer::Balancer;
use ledgerhook_tests::harness::{TestEnv, eventually, seen};

const WAIT: Duration = Duration::from_secs(120);

#[tokio::test]
async fn one_of_two_ingesters_killed_the_senders_retries_land_on_the_other() {
    let env = TestEnv::new().await.unwrap();
    let mut first = env.start_ingester(&[]).await.unwrap();
    let second = env.start_ingester(&[]).await.unwrap();
    let _worker = env.start_worker(&[]).await.unwrap();
    let balancer = Balancer::start(vec![
        first.service.http_addr.unwrap(),
        second.service.http_addr.unwrap(),
    ])
    .await
    .unwrap();
    // What a sender does: retry what was refused or cut (Svix and Stripe
    // retry any non-2xx or broken connection).
    let load = env.loadgen_at(
        &format!("http://{}/webhooks/crossmint", balancer.addr),
        &[
            "--count",
            "3000",
            "--concurrency",
            "8",
            "--rate",
            "200",
            "--duplicates",
            "1",
            "--retry-refused",
            "--wait-timeout-secs",
            "120",
        ],
    );
    eventually(WAIT, async || {
        let processed = env
            .count("select count(*) from webhook_deliveries where processed_at is not null")
            .await;
        seen(processed, processed >= 400)
    })
    .await;
    let killed_at: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("select now()")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    first.service.kill();
    let resumed = eventually(WAIT, async || {
        let resumed: Option<f64> = sqlx::query_scalar(
            "select extract(epoch from min(processed_at) - $1)::float8 from webhook_deliveries
             where received_at > $1 and processed_at is not null",
        )
        .bind(killed_at)
        .fetch_one(&env.pool)
        .await
        .unwrap();
        seen(resumed, resumed.is_some())
    })
    .await
    .unwrap();
    println!("one ingester killed: a delivery received after it granted {resumed:.2} s later");
    let (ok, output) = load.await.unwrap();
    assert!(ok, "the load generator found a problem:\n{output}");
    println!("{output}");
    assert!(
        env.count(&format!(
            "select count(*) from webhook_deliveries where received_at > '{killed_at}'"
        ))
        .await
            > 0,
        "the survivor took the stream"
    );
}
