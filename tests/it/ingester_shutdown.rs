//! SIGTERM on the ingester: requests in flight are finished, and every 200
//! it gave is a recorded delivery.

use std::time::Duration;

use futures_util::future::join_all;
use ledgerhook_tests::harness::{TestEnv, eventually, seen};
use ledgerhook_tests::webhook::payment_succeeded;

#[tokio::test]
async fn sigterm_finishes_in_flight_requests_and_every_200_is_recorded() {
    let env = TestEnv::new().await.unwrap();
    let mut ingester = env.start_ingester(&[]).await.unwrap();
    let bodies: Vec<_> = (0..400)
        .map(|n| payment_succeeded(&format!("term-{n}"), "term-user", "starter", "10"))
        .collect();

    // Start all requests, then stop the ingester while they are under way.
    let client = reqwest::Client::new();
    let url = ingester.url.clone();
    let sends = bodies.iter().map(|body| {
        let bytes = serde_json::to_vec(body).unwrap();
        let id = ledgerhook_tests::webhook::new_delivery_id();
        let headers = ledgerhook_tests::webhook::svix_headers(
            &ledgerhook_tests::webhook::test_secret(),
            &id,
            &bytes,
        );
        let mut request = client.post(&url).body(bytes);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        async move { request.send().await.map(|r| r.status().as_u16()) }
    });
    let sending = tokio::spawn(join_all(sends));
    // Stop it once it is visibly busy: some recorded, most still to come.
    eventually(Duration::from_secs(10), async || {
        let recorded = env.count("select count(*) from webhook_deliveries").await;
        seen(recorded, recorded >= 20).map_err(|n| format!("the ingester has recorded only {n}"))
    })
    .await;
    let status = ingester
        .service
        .terminate(Duration::from_secs(15))
        .await
        .unwrap();
    let answers = sending.await.unwrap();

    assert!(status.success(), "clean exit: {status:?}");
    let ok = answers.iter().filter(|a| matches!(a, Ok(200))).count() as i64;
    let server_errors = answers
        .iter()
        .filter(|a| matches!(a, Ok(s) if *s >= 500))
        .count();
    assert!(ok >= 20, "requests were answered before the stop: {ok}");
    assert_eq!(server_errors, 0, "{answers:?}");
    assert_eq!(
        env.count("select count(*) from webhook_deliveries").await,
        ok,
        "every 200 is a recorded delivery"
    );
}
