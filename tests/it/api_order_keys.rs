//! `Idempotency-Key` on `POST /api/payments/orders`: a retry gets the first
//! order back, another package under the same key is refused, concurrent
//! requests make one order and one Crossmint call, and a failed request
//! frees its key, and a key is forgotten (a new order) after a day.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use ledgerhook_tests::api_client::Api;
use ledgerhook_tests::fake_crossmint::{Behaviour, FakeCrossmint};
use ledgerhook_tests::harness::{Answer, TestEnv};
use serde_json::json;

const ORDERS: &str = "/api/payments/orders";

async fn order(api: &Api, user: &str, key: &str, package: &str) -> Answer {
    api.post_with_headers(
        ORDERS,
        user,
        &[("Idempotency-Key", key)],
        &json!({"packageId": package}),
    )
    .await
}

async fn orders_of(env: &TestEnv, user: &str) -> i64 {
    env.count(&format!(
        "select count(*) from payment_orders where user_id = '{user}'"
    ))
    .await
}

#[tokio::test]
async fn the_same_key_returns_the_same_order_and_another_package_is_duplicate_order() {
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let api = env.start_api(&crossmint.api_url, &[]).await.unwrap();

    let first = order(&api, "buyer", "key-1", "pro").await;
    assert_eq!(first.status, 201, "{first:?}");
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = order(&api, "buyer", "key-1", "pro").await;
    assert_eq!(again.status, 201, "{again:?}");
    assert_eq!(
        again.body, first.body,
        "the same answer, client secret included"
    );
    assert_eq!(again.header("idempotent-replayed"), Some("true"));

    let other = order(&api, "buyer", "key-1", "vip").await;
    assert_eq!(other.status, 409, "{other:?}");
    assert_eq!(other.body["code"], "DUPLICATE_ORDER");
    assert_eq!(other.body["details"]["firstPackageId"], "pro");

    assert_eq!(crossmint.requests().len(), 1, "Crossmint was called once");
    assert_eq!(orders_of(&env, "buyer").await, 1);
    let metrics = api.service.metrics().await;
    let created =
        ledgerhook_tests::scrape::sum(&metrics, "ledgerhook_api_orders_created_total", &[]);
    assert_eq!(created, 1.0, "{metrics}");
    let reuses = |outcome: &str| {
        ledgerhook_tests::scrape::sum(
            &metrics,
            "ledgerhook_api_order_idempotency_total",
            &[&format!("outcome=\"{outcome}\"")],
        )
    };
    assert_eq!((reuses("replayed"), reuses("duplicate_order")), (1.0, 1.0));

    // Keys are per user, and without a key every request is a new order.
    let stranger = order(&api, "someone-else", "key-1", "vip").await;
    assert_eq!(stranger.status, 201, "{stranger:?}");
    assert_ne!(stranger.body["orderId"], first.body["orderId"]);
    for _ in 0..2 {
        let plain = api
            .post(ORDERS, Some("buyer"), &json!({"packageId": "pro"}))
            .await;
        assert_eq!(plain.status, 201, "{plain:?}");
    }
    assert_eq!(orders_of(&env, "buyer").await, 3);
}

/// A slow road to `crossmint`: each create-order call is held for `delay`
/// before it is passed on, so that requests racing on one key overlap for
/// sure. Returns what `CROSSMINT_API_URL` should be.
async fn slowed(crossmint: &FakeCrossmint, delay: Duration) -> String {
    let target = format!("{}/2022-06-09/orders", crossmint.api_url);
    let forward = move |headers: HeaderMap, body: Bytes| {
        let target = target.clone();
        async move {
            tokio::time::sleep(delay).await;
            let answer = reqwest::Client::new()
                .post(&target)
                .header("x-api-key", headers["x-api-key"].as_bytes())
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("the fake Crossmint answers");
            let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
            (status, answer.bytes().await.unwrap_or_default())
        }
    };
    let app = Router::new().route("/api/2022-06-09/orders", post(forward));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn concurrent_requests_with_one_key_make_one_order_and_one_crossmint_call() {
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let slow_crossmint = slowed(&crossmint, Duration::from_millis(500)).await;
    let api = env.start_api(&slow_crossmint, &[]).await.unwrap();

    let answers =
        futures_util::future::join_all((0..8).map(|_| order(&api, "racer", "race-key", "vip")))
            .await;
    for answer in &answers {
        assert_eq!(answer.status, 201, "{answer:?}");
        assert_eq!(answer.body["orderId"], answers[0].body["orderId"]);
    }
    let replayed = answers
        .iter()
        .filter(|a| a.header("idempotent-replayed") == Some("true"))
        .count();
    assert_eq!(replayed, 7);
    // While the first request waited on Crossmint the others found its
    // reservation and waited for its answer instead of calling too.
    assert_eq!(crossmint.requests().len(), 1);
    assert_eq!(orders_of(&env, "racer").await, 1);
}

#[tokio::test]
async fn a_crossmint_failure_frees_the_key_for_the_retry() {
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let api = env.start_api(&crossmint.api_url, &[]).await.unwrap();

    crossmint.behave(Behaviour::Fail);
    let failed = order(&api, "unlucky", "retry-key", "starter").await;
    assert_eq!(failed.status, 502, "{failed:?}");
    assert_eq!(failed.body["code"], "CROSSMINT_ERROR");

    crossmint.behave(Behaviour::Answer);
    let retried = order(&api, "unlucky", "retry-key", "starter").await;
    assert_eq!(retried.status, 201, "{retried:?}");
    assert_eq!(retried.header("idempotent-replayed"), None);
    assert_eq!(crossmint.requests().len(), 2);
    assert_eq!(orders_of(&env, "unlucky").await, 1);
    let bound: String = sqlx::query_scalar(
        "select provider_order_id from order_idempotency_keys
         where user_id = 'unlucky' and idempotency_key = 'retry-key'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(retried.body["orderId"], bound.as_str());
}

#[tokio::test]
async fn a_malformed_key_is_400_and_crossmint_is_not_called() {
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let api = env.start_api(&crossmint.api_url, &[]).await.unwrap();

    let too_long = "k".repeat(256);
    for key in ["has space", "semi;colon", too_long.as_str()] {
        let answer = order(&api, "buyer", key, "pro").await;
        assert_eq!(answer.status, 400, "{key:?}: {answer:?}");
        assert_eq!(answer.body["code"], "INVALID_REQUEST");
        assert_eq!(answer.body["details"]["field"], "Idempotency-Key");
    }
    assert!(crossmint.requests().is_empty());
}

#[tokio::test]
async fn a_reservation_left_by_a_dead_request_is_taken_over_after_its_lease() {
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    // Lease: the Crossmint timeout (1 s) and a margin (5 s).
    let api = env
        .start_api(&crossmint.api_url, &[("CROSSMINT_TIMEOUT_MS", "1000")])
        .await
        .unwrap();
    // What a request that died between reserving and recording leaves.
    for (key, age) in [
        ("dead-long-ago", "1 minute"),
        ("dead-just-now", "0 seconds"),
    ] {
        sqlx::query(&format!(
            "insert into order_idempotency_keys
                 (user_id, idempotency_key, package_id, reservation, reserved_at)
             values ('phoenix', $1, 'pro', gen_random_uuid(), now() - interval '{age}')"
        ))
        .bind(key)
        .execute(&env.pool)
        .await
        .unwrap();
    }

    let taken_over = order(&api, "phoenix", "dead-long-ago", "pro").await;
    assert_eq!(taken_over.status, 201, "{taken_over:?}");
    assert_eq!(taken_over.header("idempotent-replayed"), None);
    assert_eq!(crossmint.requests().len(), 1);
    // A live-looking reservation for another package is still refused.
    let other = order(&api, "phoenix", "dead-just-now", "vip").await;
    assert_eq!(other.status, 409, "{other:?}");
    assert_eq!(other.body["code"], "DUPLICATE_ORDER");
    assert_eq!(orders_of(&env, "phoenix").await, 1);
    // With its own package the request waits on that reservation until its
    // lease has passed, then takes it over.
    let waited = order(&api, "phoenix", "dead-just-now", "pro").await;
    assert_eq!(waited.status, 201, "{waited:?}");
    assert_eq!(crossmint.requests().len(), 2);
    assert_eq!(orders_of(&env, "phoenix").await, 2);
}

#[tokio::test]
async fn a_key_older_than_a_day_no_longer_replays_and_expired_keys_are_deleted() {
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let api = env.start_api(&crossmint.api_url, &[]).await.unwrap();

    let first = order(&api, "returning", "day-old", "pro").await;
    assert_eq!(first.status, 201, "{first:?}");
    let forgotten = order(&api, "returning", "forgotten", "starter").await;
    assert_eq!(forgotten.status, 201, "{forgotten:?}");
    let recent = order(&api, "returning", "recent", "starter").await;
    assert_eq!(recent.status, 201, "{recent:?}");
    // Both used just over a day ago, as far as retention is concerned.
    let backdated = sqlx::query(
        "update order_idempotency_keys set reserved_at = now() - interval '24 hours 1 minute'
         where user_id = 'returning' and idempotency_key in ('day-old', 'forgotten')",
    )
    .execute(&env.pool)
    .await
    .unwrap();
    assert_eq!(backdated.rows_affected(), 2);

    // The day-old key is a new key now: a new order (another package is
    // not DUPLICATE_ORDER either), and its answer is the one it replays.
    let again = order(&api, "returning", "day-old", "vip").await;
    assert_eq!(again.status, 201, "{again:?}");
    assert_eq!(again.header("idempotent-replayed"), None);
    assert_ne!(again.body["orderId"], first.body["orderId"]);
    assert_eq!(crossmint.requests().len(), 4, "Crossmint was called again");
    let replayed = order(&api, "returning", "day-old", "vip").await;
    assert_eq!(replayed.body, again.body);
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));

    // That reservation also deleted the other expired key; the old answers
    // (client secrets included) are stored nowhere any more.
    let keys: Vec<String> = sqlx::query_scalar(
        "select idempotency_key from order_idempotency_keys
         where user_id = 'returning' order by idempotency_key",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(keys, ["day-old", "recent"]);
    for old in [&first, &forgotten] {
        let kept = env
            .count(&format!(
                "select count(*) from order_idempotency_keys where response->>'orderId' = '{}'",
                old.body["orderId"].as_str().unwrap()
            ))
            .await;
        assert_eq!(kept, 0, "{old:?}");
    }
    // A key within its day still replays.
    let recent_again = order(&api, "returning", "recent", "starter").await;
    assert_eq!(recent_again.body, recent.body);
    assert_eq!(recent_again.header("idempotent-replayed"), Some("true"));
    assert_eq!(orders_of(&env, "returning").await, 4);
}
