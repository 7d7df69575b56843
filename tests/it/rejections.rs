//! Bad input gets a clear status and code, is counted, and nothing
//! unverified is stored or queued.

use std::time::Duration;

use ledgerhook_providers::svix::{SecretKey, SigningSecret};
use ledgerhook_tests::harness::{Answer, TestEnv, eventually, seen};
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

/// Headers signing `body` with the test secret at `timestamp`.
fn signed_at(timestamp: i64, body: &[u8]) -> Vec<(&'static str, String)> {
    let id = new_delivery_id();
    let signature = test_secret().sign(&id, timestamp, body);
    headers(&id, timestamp, signature)
}

fn signed(body: &[u8]) -> Vec<(&'static str, String)> {
    signed_at(now_secs(), body)
}

/// The body limit the ingester of these tests runs with.
const MAX_BODY_BYTES: usize = 4096;

/// Sends one bad delivery to an ingester of its own and checks the whole
/// promise: the status, the code and an error text; the outcome counted
/// once and nothing accepted; nothing recorded, so nothing can be queued
/// (the outbox row is written with the delivery row or not at all); the
/// secret nowhere in the log.
///
/// Returns the answer, for checks of its headers.
async fn expect_rejected(
    headers: &[(&str, String)],
    body: Vec<u8>,
    status: u16,
    code: &str,
) -> Answer {
    let env = TestEnv::new().await.unwrap();
    let limit = MAX_BODY_BYTES.to_string();
    let ingester = env
        .start_ingester(&[("WEBHOOK_MAX_BODY_BYTES", &limit)])
        .await
        .unwrap();

    let answer = ingester.send_raw(headers, body).await;
    assert_eq!(answer.status, status, "{code}: {answer:?}");
    assert_eq!(answer.body["code"], code, "{answer:?}");
    assert!(
        answer.body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{answer:?}"
    );

    let metrics = ingester.service.metrics().await;
    let counted = |outcome: &str| {
        scrape::sum(
            &metrics,
            "ledgerhook_webhook_deliveries_total",
            &[&format!("outcome=\"{outcome}\"")],
        )
    };
    assert_eq!(counted(&code.to_ascii_lowercase()), 1.0, "{metrics}");
    assert_eq!(counted("accepted"), 0.0);
    assert_eq!(
        env.count("select count(*) from webhook_deliveries").await,
        0,
        "nothing was recorded"
    );
    assert_eq!(env.count("select count(*) from delivery_outbox").await, 0);
    assert!(
        !ingester.service.log().contains(&TEST_SECRET[6..]),
        "the secret never reaches the log"
    );
    answer
}

/// Svix stops retrying a message on this header; only a body the sender
/// signed and we can never accept may carry it.
fn aborts_retries(answer: &Answer) -> bool {
    answer.header("webhook-delivery") == Some("abort-message")
}

#[tokio::test]
async fn no_signature_headers_is_401_signature_missing() {
    expect_rejected(&[], body(), 401, "SIGNATURE_MISSING").await;
}

#[tokio::test]
async fn a_signature_without_its_timestamp_is_401_signature_missing() {
    let mut partial = signed(&body());
    partial.retain(|(name, _)| *name != "svix-timestamp");
    expect_rejected(&partial, body(), 401, "SIGNATURE_MISSING").await;
}

#[tokio::test]
async fn the_wrong_secret_is_401_signature_verification_failed() {
    let wrong = SigningSecret::parse("whsec_ZmFrZS13cm9uZy1zZWNyZXQtZm9yLXRlc3Rz").unwrap();
    let id = new_delivery_id();
    let now = now_secs();
    let signature = wrong.sign(&id, now, &body());
    expect_rejected(
        &headers(&id, now, signature),
        body(),
        401,
        "SIGNATURE_VERIFICATION_FAILED",
    )
    .await;
}

#[tokio::test]
async fn a_tampered_body_is_401_signature_verification_failed() {
    let signed_for_original = signed(&body());
    let mut tampered = body();
    tampered[10] ^= 1;
    let answer = expect_rejected(
        &signed_for_original,
        tampered,
        401,
        "SIGNATURE_VERIFICATION_FAILED",
    )
    .await;
    assert!(
        !aborts_retries(&answer),
        "a failed signature may be a rotation in progress: let the sender retry"
    );
}

#[tokio::test]
async fn a_signature_for_another_delivery_id_is_401_signature_verification_failed() {
    let mut replayed = signed(&body());
    replayed[0].1 = new_delivery_id();
    expect_rejected(&replayed, body(), 401, "SIGNATURE_VERIFICATION_FAILED").await;
}

#[tokio::test]
async fn a_stale_timestamp_is_401_timestamp_too_old() {
    // An hour off: far beyond the 300 s tolerance however long start-up takes.
    let stale = now_secs() - 3600;
    expect_rejected(&signed_at(stale, &body()), body(), 401, "TIMESTAMP_TOO_OLD").await;
}

#[tokio::test]
async fn a_future_timestamp_is_401_timestamp_in_future() {
    // An hour ahead: the headers are made before the ingester starts, and a
    // slow start-up must not bring a barely-future timestamp into range.
    let future = now_secs() + 3600;
    expect_rejected(
        &signed_at(future, &body()),
        body(),
        401,
        "TIMESTAMP_IN_FUTURE",
    )
    .await;
}

#[tokio::test]
async fn a_signature_that_is_not_base64_is_401_signature_malformed() {
    let mut malformed = signed(&body());
    malformed[2].1 = "v1,not-base64!".into();
    expect_rejected(&malformed, body(), 401, "SIGNATURE_MALFORMED").await;
}

#[tokio::test]
async fn an_unknown_signature_version_is_401_signature_malformed() {
    let mut malformed = signed(&body());
    malformed[2].1 = "v2,abc".into();
    expect_rejected(&malformed, body(), 401, "SIGNATURE_MALFORMED").await;
}

#[tokio::test]
async fn a_timestamp_that_is_not_a_number_is_401_signature_malformed() {
    let mut malformed = signed(&body());
    malformed[1].1 = "yesterday".into();
    expect_rejected(&malformed, body(), 401, "SIGNATURE_MALFORMED").await;
}

#[tokio::test]
async fn a_repeated_header_is_400_ambiguous_signature_headers() {
    let mut doubled = signed(&body());
    doubled.push(("svix-id", "msg_other".into()));
    expect_rejected(&doubled, body(), 400, "AMBIGUOUS_SIGNATURE_HEADERS").await;
}

#[tokio::test]
async fn an_overlong_delivery_id_is_400_invalid_delivery_id() {
    let id = "m".repeat(1000);
    let now = now_secs();
    let signature = test_secret().sign(&id, now, &body());
    expect_rejected(
        &headers(&id, now, signature),
        body(),
        400,
        "INVALID_DELIVERY_ID",
    )
    .await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_payload_too_large() {
    let big = serde_json::to_vec(
        &serde_json::json!({"type": "order.paid", "pad": "x".repeat(MAX_BODY_BYTES)}),
    )
    .unwrap();
    let answer = expect_rejected(&signed(&big), big, 413, "PAYLOAD_TOO_LARGE").await;
    assert!(
        aborts_retries(&answer),
        "signed by the sender and never acceptable: {answer:?}"
    );
}

#[tokio::test]
async fn a_forged_body_over_the_limit_is_413_and_never_aborts_retries() {
    let big = serde_json::to_vec(
        &serde_json::json!({"type": "order.paid", "pad": "x".repeat(MAX_BODY_BYTES)}),
    )
    .unwrap();
    let mut forged = big.clone();
    forged[20] ^= 1;
    let answer = expect_rejected(&signed(&big), forged, 413, "PAYLOAD_TOO_LARGE").await;
    assert!(!aborts_retries(&answer), "{answer:?}");
}

#[tokio::test]
async fn a_signature_header_of_100_entries_is_400_signature_header_too_large() {
    // Each entry once meant a MAC over the body (8,000 cost 1.2 s of CPU);
    // now a header over 2 KiB or 8 entries is refused before the body is
    // read. (8,000 entries, 384 KB, do not even reach this handler: the
    // server refuses headers over HTTP_MAX_HEADER_BYTES with 431; see
    // slow_clients.rs and the benchmark.)
    let hostile = vec!["v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="; 100].join(" ");
    let id = new_delivery_id();
    let answer = expect_rejected(
        &headers(&id, now_secs(), hostile),
        body(),
        400,
        "SIGNATURE_HEADER_TOO_LARGE",
    )
    .await;
    assert!(!aborts_retries(&answer));
}

#[tokio::test]
async fn a_verified_body_nested_2000_deep_is_400_json_too_deep_and_aborts_retries() {
    // Accepted before, then parked by the worker as "not an object": one
    // definition of JSON now refuses it at the edge. (2,000 levels fit in
    // these tests' 4 KiB body limit; 10,000 is refused the same way.)
    let deep = format!("{}{}", "[".repeat(2_000), "]".repeat(2_000)).into_bytes();
    let answer = expect_rejected(&signed(&deep), deep, 400, "JSON_TOO_DEEP").await;
    assert!(aborts_retries(&answer), "{answer:?}");
}

#[tokio::test]
async fn invalid_utf8_is_400_invalid_json() {
    // JSON is UTF-8 by definition (RFC 8259): a stray byte makes it not JSON.
    let mut bytes = br#"{"type":"order.paid","payload":{"orderId":"o-"#.to_vec();
    bytes.extend_from_slice(b"\xff\xfe");
    bytes.extend_from_slice(br#""}}"#);
    expect_rejected(&signed(&bytes), bytes, 400, "INVALID_JSON").await;
}

#[tokio::test]
async fn a_body_that_is_not_json_is_400_invalid_json() {
    let text = b"orderId=o-1&amount=10".to_vec();
    let answer = expect_rejected(&signed(&text), text, 400, "INVALID_JSON").await;
    assert!(aborts_retries(&answer), "{answer:?}");
}

#[tokio::test]
async fn an_empty_body_is_400_invalid_json() {
    expect_rejected(&signed(b""), Vec::new(), 400, "INVALID_JSON").await;
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
    // Ready as soon as deliveries can be recorded; the publisher connects
    // in the background and the body shows when it has.
    eventually(Duration::from_secs(10), async || {
        let ready = ingester.get("/readyz").await;
        assert_eq!(ready.status, 200, "{ready:?}");
        assert_eq!(ready.body["database"], true);
        {
            let connected = ready.body["broker"] == true;
            seen(ready.body, connected)
        }
    })
    .await;
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
    // Either provider alone is enough (stripe_ingest.rs); with neither
    // there is nothing to serve.
    let env = TestEnv::new().await.unwrap();
    let error = env
        .start_ingester(&[
            ("CROSSMINT_WEBHOOK_SECRET", ""),
            ("STRIPE_WEBHOOK_SECRET", ""),
        ])
        .await
        .err()
        .expect("the ingester must refuse to start")
        .to_string();
    assert!(error.contains("CROSSMINT_WEBHOOK_SECRET"), "{error}");
    assert!(error.contains("STRIPE_WEBHOOK_SECRET"), "{error}");
}

#[tokio::test]
async fn an_ed25519_signed_delivery_verifies_against_a_configured_public_key() {
    // A Svix endpoint switched to asymmetric signing sends `v1a,` entries;
    // before, they were "malformed" and retried for 28 hours.
    let sender_key = SecretKey::from_seed(&[0x5a; 32]);
    let public = sender_key.public_key();
    let keys = format!("{TEST_SECRET} {}", public.encoded());
    let env = TestEnv::new().await.unwrap();
    let ingester = env
        .start_ingester(&[("CROSSMINT_WEBHOOK_SECRET", &keys)])
        .await
        .unwrap();
    let id = new_delivery_id();
    let now = now_secs();
    let signed = headers(&id, now, sender_key.sign(&id, now, &body()));
    let answer = ingester.send_raw(&signed, body()).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let verified_by: String =
        sqlx::query_scalar("select verified_by from webhook_deliveries where delivery_id = $1")
            .bind(&id)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(verified_by, public.fingerprint());
}

#[tokio::test]
async fn an_ed25519_signature_without_its_public_key_is_401_signature_verification_failed() {
    let sender_key = SecretKey::from_seed(&[0x5b; 32]);
    let id = new_delivery_id();
    let now = now_secs();
    let signature = sender_key.sign(&id, now, &body());
    let answer = expect_rejected(
        &headers(&id, now, signature),
        body(),
        401,
        "SIGNATURE_VERIFICATION_FAILED",
    )
    .await;
    assert!(!aborts_retries(&answer));
}

#[tokio::test]
async fn recording_past_its_deadline_is_503_and_a_late_commit_makes_the_retry_a_duplicate() {
    let env = TestEnv::new().await.unwrap();
    let ingester = env
        .start_ingester(&[("RECORD_TIMEOUT_MS", "300")])
        .await
        .unwrap();
    // A lock no insert can pass, as a stuck migration or a vacuum full would.
    let mut blocker = env.pool.begin().await.unwrap();
    sqlx::query("lock table webhook_deliveries in exclusive mode")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let delivery = payment_succeeded("o-late", "u-late", "starter", "10");
    let id = new_delivery_id();
    let started = std::time::Instant::now();
    let answer = ingester.send_as(&id, &delivery).await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(answer.body["code"], "STORAGE_UNAVAILABLE");
    assert_eq!(answer.retry_after.as_deref(), Some("5"));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered within the deadline, not at the sender's timeout: {:?}",
        started.elapsed()
    );

    blocker.commit().await.unwrap();
    // The insert that waited on the lock commits after the 503.
    env.wait_for_count(
        &format!("select count(*) from webhook_deliveries where delivery_id = '{id}'"),
        1,
        Duration::from_secs(10),
    )
    .await;
    let retry = ingester.send_as(&id, &delivery).await;
    assert_eq!(retry.status, 200, "{retry:?}");
    assert_eq!(retry.body["status"], "duplicate");
}
