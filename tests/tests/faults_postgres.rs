//! PostgreSQL stopped and restarted while the load generator sends, on a
//! server of the test's own. The load generator retries refusals as Svix
//! does; in the end every accepted delivery is processed and every order
//! granted once (the load generator checks the ledger invariant itself).

use std::time::{Duration, Instant};

use ledgerhook_tests::harness::TestEnv;
use ledgerhook_tests::own_postgres::OwnPostgres;
use ledgerhook_tests::scrape;

const DELIVERIES: i64 = 800;
const WAIT: Duration = Duration::from_secs(120);

#[tokio::test]
async fn postgres_stopped_and_restarted_under_load_loses_nothing_and_grants_once() {
    let postgres = OwnPostgres::start().unwrap();
    let env = TestEnv::on(&postgres.url("postgres")).await.unwrap();
    let ingester = env
        .start_ingester(&[
            ("OUTBOX_RELAY_GRACE_MS", "1000"),
            ("OUTBOX_RELAY_INTERVAL_MS", "200"),
        ])
        .await
        .unwrap();
    let _worker = env.start_worker(&[]).await.unwrap();
    let load = env.loadgen(
        &ingester,
        &[
            "--count",
            "800",
            "--concurrency",
            "16",
            "--rate",
            "200",
            "--retry-refused",
            "--wait-timeout-secs",
            "120",
        ],
    );

    // Once deliveries flow, take the database away for two seconds.
    let deadline = Instant::now() + WAIT;
    while env.count("select count(*) from webhook_deliveries").await < 100 {
        assert!(Instant::now() < deadline, "deliveries never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    postgres.stop().unwrap();
    // Not ready while nothing can be recorded, so a load balancer sends the
    // sender elsewhere; the broker is fine and says so.
    let outage = Instant::now();
    loop {
        let ready = ingester.get("/readyz").await;
        if ready.status == 503 {
            assert_eq!(ready.body["database"], false, "{ready:?}");
            assert_eq!(ready.body["broker"], true, "{ready:?}");
            break;
        }
        assert!(
            outage.elapsed() < Duration::from_secs(10),
            "readiness never noticed: {ready:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(2).saturating_sub(outage.elapsed())).await;
    postgres.resume().unwrap();

    let (ok, output) = load.await.unwrap();
    assert!(ok, "{output}");
    assert!(output.contains("invariant holds"), "{output}");
    let refused: usize = output
        .lines()
        .find_map(|l| l.strip_prefix("refused and sent again: "))
        .and_then(|rest| rest.trim_end_matches(" times").parse().ok())
        .unwrap_or(0);
    assert!(refused > 0, "the outage was seen by the sender: {output}");
    let metrics = ingester.service.metrics().await;
    assert!(
        scrape::sum(
            &metrics,
            "ledgerhook_webhook_deliveries_total",
            &["outcome=\"storage_unavailable\""]
        ) > 0.0
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
}
