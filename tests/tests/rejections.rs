//! Bad input gets a clear status and code, is counted, and nothing
//! unverified is stored or queued.

use std::time::Duration;

use ledgerhook_shared::svix::SigningSecret;
use ledgerhook_tests::harness::{Ingester, TestEnv};
use ledgerhook_tests::scrape;
use ledgerhook_tests::webhook::{
    TEST_SECRET, new_delivery_id, now_secs, payment_succeeded, test_secret,
};

fn body() -> Vec<u8> {
    serde_json::to_vec(&payment_succeeded("o-bad", "u-bad", "starter", "10")).unwrap()
}

fn headers(id: &str, timestamp: i64, signature: String) -> Vec<(&'static str, String)> {
    vec![
        ("svix-id", id.to_owned()),
        ("svix-timestamp", timestamp.to_string()),
        ("svix-signature", signature),
    ]
}

async fn expect_rejected(
    ingester: &Ingester,
    headers: &[(&str, String)],
    body: Vec<u8>,
    status: u16,
    code: &str,
) {
    let answer = ingester.send_raw(headers, body).await;
    assert_eq!(answer.status, status, "{code}: {answer:?}");
    assert_eq!(answer.body["code"], code, "{answer:?}");
    assert!(answer.body["error"].as_str().is_some_and(|e| !e.is_empty()));
}

#[tokio::test]
async fn each_bad_delivery_gets_its_status_code_and_metric_and_nothing_is_stored() {
    let env = TestEnv::new().await.unwrap();
    let ingester = env
        .start_ingester(&[("WEBHOOK_MAX_BODY_BYTES", "4096")])
        .await
        .unwrap();
    let secret = test_secret();
    let now = now_secs();
    let id = new_delivery_id();
    let sign = |id: &str, ts: i64, body: &[u8]| secret.sign(id, ts, body);

    expect_rejected(&ingester, &[], body(), 401, "SIGNATURE_MISSING").await;

    let wrong = SigningSecret::parse("whsec_ZmFrZS13cm9uZy1zZWNyZXQtZm9yLXRlc3Rz").unwrap();
    let wrong_sig = wrong.sign(&id, now, &body());
    expect_rejected(
        &ingester,
        &headers(&id, now, wrong_sig),
        body(),
        401,
        "SIGNATURE_VERIFICATION_FAILED",
    )
    .await;

    let mut tampered = body();
    let signed = sign(&id, now, &tampered);
    tampered[10] ^= 1;
    expect_rejected(
        &ingester,
        &headers(&id, now, signed),
        tampered,
        401,
        "SIGNATURE_VERIFICATION_FAILED",
    )
    .await;

    let stale = now - 301;
    expect_rejected(
        &ingester,
        &headers(&id, stale, sign(&id, stale, &body())),
        body(),
        401,
        "TIMESTAMP_TOO_OLD",
    )
    .await;
    let future = now + 301;
    expect_rejected(
        &ingester,
        &headers(&id, future, sign(&id, future, &body())),
        body(),
        401,
        "TIMESTAMP_IN_FUTURE",
    )
    .await;

    expect_rejected(
        &ingester,
        &headers(&id, now, "v1,not-base64!".into()),
        body(),
        401,
        "SIGNATURE_MALFORMED",
    )
    .await;
    expect_rejected(
        &ingester,
        &headers(&id, now, "v2,abc".into()),
        body(),
        401,
        "SIGNATURE_MALFORMED",
    )
    .await;

    let mut doubled = headers(&id, now, sign(&id, now, &body()));
    doubled.push(("svix-id", "msg_other".into()));
    expect_rejected(
        &ingester,
        &doubled,
        body(),
        400,
        "AMBIGUOUS_SIGNATURE_HEADERS",
    )
    .await;

    let big =
        serde_json::to_vec(&serde_json::json!({"type": "order.paid", "pad": "x".repeat(5000)}))
            .unwrap();
    expect_rejected(
        &ingester,
        &headers(&id, now, sign(&id, now, &big)),
        big,
        413,
        "PAYLOAD_TOO_LARGE",
    )
    .await;

    let not_json = b"\xff\xfe{not json".to_vec();
    expect_rejected(
        &ingester,
        &headers(&id, now, sign(&id, now, &not_json)),
        not_json,
        400,
        "INVALID_JSON",
    )
    .await;

    assert_eq!(
        env.count("select count(*) from webhook_deliveries").await,
        0,
        "nothing was recorded"
    );
    let metrics = ingester.service.metrics().await;
    let outcome = |o: &str| {
        scrape::sum(
            &metrics,
            "ledgerhook_webhook_deliveries_total",
            &[&format!("outcome=\"{o}\"")],
        )
    };
    assert_eq!(outcome("signature_missing"), 1.0);
    assert_eq!(outcome("signature_verification_failed"), 2.0);
    assert_eq!(outcome("timestamp_too_old"), 1.0);
    assert_eq!(outcome("timestamp_in_future"), 1.0);
    assert_eq!(outcome("signature_malformed"), 2.0);
    assert_eq!(outcome("ambiguous_signature_headers"), 1.0);
    assert_eq!(outcome("payload_too_large"), 1.0);
    assert_eq!(outcome("invalid_json"), 1.0);
    assert_eq!(outcome("accepted"), 0.0);
    assert!(
        !ingester.service.log().contains(&TEST_SECRET[6..]),
        "the secret never reaches the log"
    );
}

#[tokio::test]
async fn during_rotation_both_secrets_verify_and_the_delivery_records_which() {
    let env = TestEnv::new().await.unwrap();
    let old = "whsec_b2xkLXNlY3JldC1mb3ItdGVzdHM=";
    let both = format!("{old} {TEST_SECRET}");
    let ingester = env
        .start_ingester(&[("CROSSMINT_WEBHOOK_SECRET", &both)])
        .await
        .unwrap();

    let old_secret = SigningSecret::parse(old).unwrap();
    for secret in [&old_secret, &test_secret()] {
        let id = new_delivery_id();
        let now = now_secs();
        let signature = secret.sign(&id, now, &body());
        let answer = ingester
            .send_raw(&headers(&id, now, signature), body())
            .await;
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    let fingerprints: Vec<String> =
        sqlx::query_scalar("select verified_by from webhook_deliveries order by id")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(
        fingerprints,
        [old_secret.fingerprint(), test_secret().fingerprint()]
    );
}

#[tokio::test]
async fn standard_webhooks_headers_are_accepted_and_raw_bytes_kept() {
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    // Odd spacing and key order: the exact bytes must be what is stored.
    let raw = br#"{ "type":"order.paid",   "payload": {"orderId":"o-raw","totalPrice":"10.00"} }"#
        .to_vec();
    let id = new_delivery_id();
    let now = now_secs();
    let signature = test_secret().sign(&id, now, &raw);
    let answer = ingester
        .send_raw(
            &[
                ("webhook-id", id.clone()),
                ("webhook-timestamp", now.to_string()),
                ("webhook-signature", signature),
            ],
            raw.clone(),
        )
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let stored: Vec<u8> =
        sqlx::query_scalar("select body from webhook_deliveries where delivery_id = $1")
            .bind(&id)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(stored, raw);
}

#[tokio::test]
async fn health_and_readiness_report_the_parts() {
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    assert_eq!(ingester.get("/healthz").await.status, 200);
    // The publisher connects in the background; readiness follows.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ready = ingester.get("/readyz").await;
        if ready.status == 200 {
            assert_eq!(ready.body["database"], true);
            assert_eq!(ready.body["broker"], true);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never ready: {ready:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_database_that_cannot_record_gets_503_with_retry_after() {
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    // Make the insert fail the way an outage would look to the handler.
    sqlx::query("alter table webhook_deliveries rename to webhook_deliveries_away")
        .execute(&env.pool)
        .await
        .unwrap();
    let answer = ingester
        .send(&payment_succeeded("o-503", "u", "starter", "10"))
        .await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(answer.body["code"], "STORAGE_UNAVAILABLE");
    assert_eq!(answer.retry_after.as_deref(), Some("5"));
    let metrics = ingester.service.metrics().await;
    assert_eq!(
        scrape::sum(
            &metrics,
            "ledgerhook_webhook_deliveries_total",
            &["outcome=\"storage_unavailable\""]
        ),
        1.0
    );
}

#[tokio::test]
async fn a_missing_secret_stops_start_up_naming_the_variable() {
    let env = TestEnv::new().await.unwrap();
    let error = env
        .start_ingester(&[("CROSSMINT_WEBHOOK_SECRET", "")])
        .await
        .err()
        .expect("the ingester must refuse to start")
        .to_string();
    assert!(error.contains("CROSSMINT_WEBHOOK_SECRET"), "{error}");
}
