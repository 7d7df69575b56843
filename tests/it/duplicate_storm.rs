//! A duplicate storm across three workers, driven by the load generator:
//! every payment sent five times at once, under five delivery ids and both
//! event names. Each order is granted exactly once (the load generator
//! checks the ledger invariant itself); every extra copy is a counted
//! duplicate.

use std::time::Duration;

use ledgerhook_tests::harness::{TestEnv, eventually, seen};
use ledgerhook_tests::scrape;

const ORDERS: i64 = 400;
const COPIES: i64 = 5;
const WAIT: Duration = Duration::from_secs(90);

#[tokio::test]
async fn three_workers_in_a_duplicate_storm_grant_each_order_once() {
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    // Small batches and prefetch, so the copies of one order spread over the workers.
    let small = [("WORKER_BATCH_SIZE", "8"), ("WORKER_CONCURRENCY", "2")];
    let workers = [
        env.start_worker(&small).await.unwrap(),
        env.start_worker(&small).await.unwrap(),
        env.start_worker(&small).await.unwrap(),
    ];
    let (ok, output) = env
        .loadgen(
            &ingester,
            &[
                "--count",
                "400",
                "--duplicates",
                "4",
                "--concurrency",
                "32",
                "--wait-timeout-secs",
                "90",
            ],
        )
        .await
        .unwrap();
    assert!(ok, "{output}");
    assert!(output.contains("invariant holds"), "{output}");

    env.wait_for_count("select count(*) from delivery_outbox", 0, WAIT)
        .await;
    assert_eq!(
        env.count("select count(*) from webhook_deliveries").await,
        ORDERS * COPIES
    );
    assert_eq!(
        env.count("select count(*) from credit_ledger").await,
        ORDERS
    );
    assert_eq!(
        env.count("select count(*) from webhook_deliveries where outcome = 'duplicate'")
            .await,
        ORDERS * (COPIES - 1)
    );
    // The workers' counts caught up with every delivery processed.
    let pages = eventually(WAIT, async || {
        let mut pages = Vec::new();
        for worker in &workers {
            pages.push(worker.metrics().await);
        }
        let counted: f64 = pages
            .iter()
            .map(|page| scrape::sum(page, "ledgerhook_worker_deliveries_total", &[]))
            .sum();
        seen(counted, counted >= (ORDERS * COPIES) as f64)
            .map(|_| pages)
            .map_err(|counted| format!("the workers counted {counted} deliveries"))
    })
    .await;
    let mut grants = 0.0;
    let mut duplicates = 0.0;
    let mut took_part = 0;
    for metrics in &pages {
        grants += scrape::sum(metrics, "ledgerhook_grants_total", &[]);
        duplicates += scrape::sum(metrics, "ledgerhook_duplicate_orders_total", &[]);
        took_part +=
            usize::from(scrape::sum(metrics, "ledgerhook_worker_deliveries_total", &[]) > 0.0);
    }
    assert_eq!(grants, ORDERS as f64);
    assert_eq!(duplicates, (ORDERS * (COPIES - 1)) as f64);
    assert_eq!(took_part, 3, "all three workers processed deliveries");
}
