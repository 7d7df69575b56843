//! Never a credit twice: the same delivery, the same order under many
//! deliveries, and several workers racing.

use std::time::Duration;

use futures_util::future::join_all;
use ledgerhook_tests::harness::{TestEnv, eventually, seen};
use ledgerhook_tests::scrape;
use ledgerhook_tests::webhook::{
    delivery_completed, new_delivery_id, order_paid, payment_succeeded,
};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn the_same_delivery_sent_twenty_times_at_once_is_recorded_and_granted_once() {
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let worker = env.start_worker(&[]).await.unwrap();

    let id = new_delivery_id();
    let body = payment_succeeded("order-20x", "user-20x", "vip", "100.00");
    let answers = join_all((0..20).map(|_| ingester.send_as(&id, &body))).await;

    assert!(answers.iter().all(|a| a.status == 200), "{answers:?}");
    let accepted = answers
        .iter()
        .filter(|a| a.body["status"] == "accepted")
        .count();
    assert_eq!(accepted, 1, "exactly one of the twenty is new: {answers:?}");
    env.wait_all_processed(1, WAIT).await;
    assert_eq!(
        env.count("select count(*) from webhook_deliveries").await,
        1
    );
    assert_eq!(env.balance("user-20x").await, 9600);
    assert_eq!(env.count("select count(*) from credit_ledger").await, 1);
    let ingested = ingester.service.metrics().await;
    assert_eq!(
        scrape::sum(
            &ingested,
            "ledgerhook_webhook_deliveries_total",
            &["outcome=\"duplicate\""]
        ),
        19.0
    );
    assert_eq!(
        scrape::sum(
            &worker
                .metrics_once("ledgerhook_grants_total", &[], 1.0)
                .await,
            "ledgerhook_grants_total",
            &[]
        ),
        1.0
    );
}

#[tokio::test]
async fn one_order_under_several_delivery_ids_and_event_names_grants_once_and_counts_duplicates() {
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let worker = env.start_worker(&[]).await.unwrap();

    let order = "order-many";
    let bodies = [
        payment_succeeded(order, "user-many", "pro", "50.00"),
        payment_succeeded(order, "user-many", "pro", "50"),
        order_paid(order, "user-many", "pro", "50.000000"),
        order_paid(order, "user-many", "pro", "50.00"),
        delivery_completed(order, "user-many", "pro"),
    ];
    let answers = join_all(bodies.iter().map(|b| ingester.send(b))).await;
    assert!(
        answers
            .iter()
            .all(|a| a.status == 200 && a.body["status"] == "accepted")
    );
    env.wait_all_processed(5, WAIT).await;

    assert_eq!(env.balance("user-many").await, 3300);
    assert_eq!(env.count("select count(*) from credit_ledger").await, 1);
    assert_eq!(
        env.count("select count(*) from webhook_deliveries where outcome = 'duplicate'")
            .await,
        3
    );
    assert_eq!(
        env.count("select count(*) from payment_order_events").await,
        6,
        "five provider events and credits.added"
    );
    assert_eq!(
        scrape::sum(
            &worker
                .metrics_once("ledgerhook_duplicate_orders_total", &[], 3.0)
                .await,
            "ledgerhook_duplicate_orders_total",
            &[]
        ),
        3.0
    );
}

#[tokio::test]
async fn two_workers_racing_on_the_same_orders_grant_each_once() {
    let env = TestEnv::new().await.unwrap();
    // Small carriers, batches and prefetch, so the broker spreads the copies
    // of each order over both workers instead of handing one worker
    // everything (160 deliveries fill only five carriers of 32).
    let ingester = env
        .start_ingester(&[("PUBLISH_CARRIER_MAX", "4")])
        .await
        .unwrap();
    let small = [("WORKER_BATCH_SIZE", "4"), ("WORKER_CONCURRENCY", "2")];
    let first = env.start_worker(&small).await.unwrap();
    let second = env.start_worker(&small).await.unwrap();

    // 40 orders, each delivered four times under different ids and names,
    // all at once, so that the two workers hold copies of one order together.
    let mut sends = Vec::new();
    for n in 0..40 {
        let order = format!("race-{n}");
        let user = format!("racer-{}", n % 5);
        for _ in 0..2 {
            sends.push(payment_succeeded(&order, &user, "starter", "10"));
            sends.push(order_paid(&order, &user, "starter", "10.00"));
        }
    }
    let answers = join_all(sends.iter().map(|b| ingester.send(b))).await;
    assert!(answers.iter().all(|a| a.status == 200));
    env.wait_all_processed(160, WAIT).await;

    for racer in 0..5 {
        assert_eq!(
            env.balance(&format!("racer-{racer}")).await,
            8 * 500,
            "racer-{racer}"
        );
    }
    assert_eq!(env.count("select count(*) from credit_ledger").await, 40);
    assert_eq!(
        env.count("select count(*) from webhook_deliveries where outcome = 'duplicate'")
            .await,
        120
    );
    // Both workers' counts caught up with the 160 rows processed.
    let (first_page, second_page) = eventually(WAIT, async || {
        let pages = (first.metrics().await, second.metrics().await);
        let counted = scrape::sum(&pages.0, "ledgerhook_worker_deliveries_total", &[])
            + scrape::sum(&pages.1, "ledgerhook_worker_deliveries_total", &[]);
        seen(counted, counted >= 160.0)
            .map(|_| pages)
            .map_err(|counted| format!("the workers counted {counted} deliveries"))
    })
    .await;
    let grants = scrape::sum(&first_page, "ledgerhook_grants_total", &[])
        + scrape::sum(&second_page, "ledgerhook_grants_total", &[]);
    assert_eq!(grants, 40.0);
    let processed_by_first = scrape::sum(&first_page, "ledgerhook_worker_deliveries_total", &[]);
    assert!(
        processed_by_first > 0.0 && processed_by_first < 160.0,
        "both workers took part: {processed_by_first}"
    );
}
