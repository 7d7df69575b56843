//! PostgreSQL stopped and restarted while the load generator sends, on a
//! server of the test's own. The load generator retries refusals as Svix
//! does; in the end every accepted delivery is processed and every order
//! granted once (the load generator checks the ledger invariant itself).

use std::time::Duration;

use ledgerhook_tests::harness::{TestEnv, eventually, seen};
use ledgerhook_tests::own_postgres::OwnPostgres;

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

    // Once deliveries flow, take the database away until the sender has
    // been refused.
    eventually(WAIT, async || {
        let recorded = env.count("select count(*) from webhook_deliveries").await;
        seen(recorded, recorded >= 100).map_err(|n| format!("{n} deliveries recorded"))
    })
    .await;
    postgres.stop().unwrap();
    // Not ready while nothing can be recorded, so a load balancer sends the
    // sender elsewhere; the broker is fine and says so.
    let ready = eventually(Duration::from_secs(10), async || {
        let ready = ingester.get("/readyz").await;
        seen(ready.body.clone(), ready.status == 503).map(|_| ready)
    })
    .await;
    assert_eq!(ready.body["database"], false, "{ready:?}");
    assert_eq!(ready.body["broker"], true, "{ready:?}");
    eventually(WAIT, async || {
        let refused = ingester
            .service
            .metric(
                "ledgerhook_webhook_deliveries_total",
                &["outcome=\"storage_unavailable\""],
            )
            .await;
        seen(refused, refused > 0.0).map_err(|n| format!("{n} deliveries refused"))
    })
    .await;
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
