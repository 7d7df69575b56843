//! A duplicate storm across three workers: every payment sent several times
//! at once, under different delivery ids and both event names, some ids
//! repeated. Each order is granted exactly once.

use std::time::Duration;

use futures_util::future::join_all;
use ledgerhook_tests::harness::TestEnv;
use ledgerhook_tests::scrape;
use ledgerhook_tests::webhook::{new_delivery_id, order_paid, payment_succeeded, price_of};

const ORDERS: usize = 150;
const WAIT: Duration = Duration::from_secs(90);

#[tokio::test]
async fn three_workers_in_a_duplicate_storm_grant_each_order_once() {
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let small = [("WORKER_BATCH_SIZE", "8"), ("WORKER_CONCURRENCY", "2")];
    let workers = [
        env.start_worker(&small).await.unwrap(),
        env.start_worker(&small).await.unwrap(),
        env.start_worker(&small).await.unwrap(),
    ];

    let packages = ["starter", "pro", "vip"];
    let mut sends = Vec::new();
    let mut expected: i64 = 0;
    for n in 0..ORDERS {
        let package = packages[n % 3];
        expected += ledgerhook_shared::domain::find_package(package)
            .unwrap()
            .total_credits();
        let (order, user, price) = (
            format!("storm-{n}"),
            format!("storm-user-{}", n % 11),
            price_of(package),
        );
        let repeated_id = new_delivery_id();
        // Five copies: two names, three distinct ids, one id sent twice.
        sends.push((
            new_delivery_id(),
            payment_succeeded(&order, &user, package, &price),
        ));
        sends.push((
            new_delivery_id(),
            order_paid(&order, &user, package, &price),
        ));
        sends.push((
            repeated_id.clone(),
            payment_succeeded(&order, &user, package, &price),
        ));
        sends.push((
            repeated_id,
            payment_succeeded(&order, &user, package, &price),
        ));
        sends.push((
            new_delivery_id(),
            order_paid(&order, &user, package, &price),
        ));
    }
    for chunk in sends.chunks(125) {
        let answers = join_all(chunk.iter().map(|(id, body)| ingester.send_as(id, body))).await;
        assert!(answers.iter().all(|a| a.status == 200));
    }
    let recorded = (ORDERS * 4) as i64;
    env.wait_all_processed(recorded, WAIT).await;

    assert_eq!(
        env.count("select count(*) from webhook_deliveries").await,
        recorded,
        "the repeated id is recorded once"
    );
    assert_eq!(
        env.count("select count(*) from credit_ledger").await,
        ORDERS as i64
    );
    assert_eq!(env.count("select count(*) from (select order_id from credit_ledger group by order_id having count(*) > 1) t").await, 0);
    assert_eq!(
        env.count("select coalesce(sum(credits), 0)::int8 from credit_ledger")
            .await,
        expected
    );
    assert_eq!(
        env.count("select coalesce(sum(balance), 0)::int8 from user_credits")
            .await,
        expected
    );
    let mut grants = 0.0;
    let mut duplicates = 0.0;
    let mut took_part = 0;
    for worker in &workers {
        let metrics = worker.metrics().await;
        grants += scrape::sum(&metrics, "ledgerhook_grants_total", &[]);
        duplicates += scrape::sum(&metrics, "ledgerhook_duplicate_orders_total", &[]);
        took_part +=
            usize::from(scrape::sum(&metrics, "ledgerhook_worker_deliveries_total", &[]) > 0.0);
    }
    assert_eq!(grants, ORDERS as f64);
    assert_eq!(duplicates, (ORDERS * 3) as f64);
    assert_eq!(took_part, 3, "all three workers processed deliveries");
}
