//! PostgreSQL stopped and restarted while deliveries arrive, on a server of
//! the test's own. The sender retries refusals as Svix does; in the end
//! every accepted delivery is processed and every order granted once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use ledgerhook_tests::harness::{Ingester, TestEnv};
use ledgerhook_tests::own_postgres::OwnPostgres;
use ledgerhook_tests::webhook::{new_delivery_id, payment_succeeded};
use tokio::sync::Semaphore;

const DELIVERIES: usize = 600;
const SENDERS: usize = 16;
const WAIT: Duration = Duration::from_secs(120);

/// Sends one delivery until it is accepted (200), like a webhook sender
/// retrying; returns how many refusals it met and whether each carried
/// Retry-After.
async fn send_until_accepted(ingester: &Ingester, n: usize) -> (usize, bool) {
    let id = new_delivery_id();
    let body = payment_succeeded(
        &format!("fault-{n}"),
        &format!("fault-user-{}", n % 13),
        "pro",
        "50",
    );
    let deadline = Instant::now() + WAIT;
    let mut refused = 0;
    let mut all_had_retry_after = true;
    loop {
        let answer = ingester.send_as(&id, &body).await;
        if answer.status == 200 {
            return (refused, all_had_retry_after);
        }
        assert_eq!(answer.status, 503, "{answer:?}");
        assert_eq!(answer.body["code"], "STORAGE_UNAVAILABLE");
        refused += 1;
        all_had_retry_after &= answer.retry_after.is_some();
        assert!(Instant::now() < deadline, "delivery {n} never accepted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn postgres_stopped_and_restarted_under_load_loses_nothing_and_grants_once() {
    let postgres = OwnPostgres::start().unwrap();
    let env = TestEnv::on(&postgres.url("postgres")).await.unwrap();
    let ingester = Arc::new(
        env.start_ingester(&[
            ("OUTBOX_RELAY_GRACE_MS", "1000"),
            ("OUTBOX_RELAY_INTERVAL_MS", "200"),
        ])
        .await
        .unwrap(),
    );
    let _worker = env.start_worker(&[]).await.unwrap();

    let slots = Arc::new(Semaphore::new(SENDERS));
    let sending = tokio::spawn({
        let ingester = ingester.clone();
        async move {
            join_all((0..DELIVERIES).map(|n| {
                let (ingester, slots) = (ingester.clone(), slots.clone());
                async move {
                    let _slot = slots.acquire().await.unwrap();
                    send_until_accepted(&ingester, n).await
                }
            }))
            .await
        }
    });

    // Once deliveries flow, take the database away for two seconds.
    let deadline = Instant::now() + WAIT;
    while env.count("select count(*) from webhook_deliveries").await < 100 {
        assert!(Instant::now() < deadline, "deliveries never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    postgres.stop().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    postgres.resume().unwrap();

    let results = sending.await.unwrap();
    let refused: usize = results.iter().map(|(r, _)| r).sum();
    assert!(refused > 0, "the outage was seen by the sender");
    assert!(
        results.iter().all(|(_, retry_after)| *retry_after),
        "every 503 carried Retry-After"
    );

    // Every accepted delivery is processed, published, and granted once.
    env.wait_all_processed(DELIVERIES as i64, WAIT).await;
    env.wait_for_count("select count(*) from delivery_outbox", 0, WAIT)
        .await;
    assert_eq!(
        env.count("select count(*) from webhook_deliveries").await,
        DELIVERIES as i64
    );
    assert_eq!(
        env.count("select count(*) from credit_ledger").await,
        DELIVERIES as i64
    );
    assert_eq!(
        env.count("select coalesce(sum(balance), 0)::int8 from user_credits")
            .await,
        DELIVERIES as i64 * 3300
    );
    assert_eq!(
        env.count("select count(*) from webhook_deliveries where outcome <> 'granted'")
            .await,
        0
    );
}
