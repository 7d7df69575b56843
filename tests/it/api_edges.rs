//! The API's edges: text PostgreSQL cannot hold (a NUL character) refused
//! by field name before anything is written, token subjects and lifetimes
//! bounded, bodies bounded. Each of these was a 500 or a 200 before.

use std::time::Duration;

use ledgerhook_tests::api_client::{Api, token_expiring};
use ledgerhook_tests::fake_crossmint::FakeCrossmint;
use ledgerhook_tests::harness::{Answer, TestEnv};
use ledgerhook_tests::scrape;
use ledgerhook_tests::webhook::payment_succeeded;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);
const CONSUME: &str = "/api/v1/user/credits/consume";
const CREDITS: &str = "/api/v1/user/credits";
const ORDERS: &str = "/api/payments/orders";
const CONFIRM: &str = "/api/payments/confirm";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `GET /api/v1/user/credits` with exactly this bearer token.
async fn credits_with(api: &Api, token: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(format!("{}{CREDITS}", api.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("the API answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The refusal of a NUL in `field`: 400, `INVALID_REQUEST`, the field named
/// in the text and in `details.field`.
fn assert_nul_refused(answer: &Answer, field: &str) {
    assert_eq!(answer.status, 400, "NUL in {field}: {answer:?}");
    assert_eq!(
        answer.body["code"], "INVALID_REQUEST",
        "NUL in {field}: {answer:?}"
    );
    assert_eq!(
        answer.body["details"]["field"], field,
        "NUL in {field}: {answer:?}"
    );
    assert!(
        answer.body["error"]
            .as_str()
            .is_some_and(|e| e.contains(field) && e.contains("NUL")),
        "NUL in {field}: {answer:?}"
    );
}

/// The API counted `refused` requests answered 400 and none answered 500,
/// and logged no failure of its own.
async fn assert_refused_without_server_error(api: &Api, refused: f64) {
    let metrics = api.service.metrics().await;
    let answered = |status: &str| {
        scrape::sum(
            &metrics,
            "ledgerhook_http_request_duration_seconds_count",
            &[r#"service="api""#, &format!("status=\"{status}\"")],
        )
    };
    assert_eq!(answered("400"), refused, "{metrics}");
    assert_eq!(answered("500"), 0.0, "{metrics}");
    let log = api.service.log();
    for failure in [
        "CREDITS_UPDATE_FAILED",
        "spending credits failed",
        "internal error",
    ] {
        assert!(!log.contains(failure), "the API logged {failure:?}:\n{log}");
    }
}

#[tokio::test]
async fn a_nul_in_the_idempotency_key_or_description_of_a_spend_is_400_naming_the_field_and_nothing_is_spent()
 {
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let api = env.start_api(&crossmint.api_url, &[]).await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let _worker = env.start_worker(&[]).await.unwrap();
    // Credits to spend, through the real path: so a spend would go through
    // but for the NUL.
    let created = api
        .post(
            ORDERS,
            Some("nul-spender"),
            &json!({"packageId": "starter"}),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let order_id = created.body["orderId"].as_str().unwrap();
    let price = created.body["amount"].as_str().unwrap();
    let paid = payment_succeeded(order_id, "nul-spender", "starter", price);
    assert_eq!(ingester.send(&paid).await.status, 200);
    env.wait_for_count(
        "select count(*) from payment_orders where status = 'completed'",
        1,
        WAIT,
    )
    .await;
    assert_eq!(env.balance("nul-spender").await, 500);

    let cases = [
        (
            "idempotencyKey",
            json!({"amount": 10, "idempotencyKey": "key\u{0}1"}),
        ),
        (
            "description",
            json!({"amount": 10, "description": "a\u{0}b", "idempotencyKey": "key-2"}),
        ),
    ];
    for (field, body) in cases {
        let answer = api.post(CONSUME, Some("nul-spender"), &body).await;
        assert_nul_refused(&answer, field);
        assert_eq!(
            env.count("select count(*) from credit_spends").await,
            0,
            "NUL in {field}: nothing spent"
        );
        assert_eq!(
            env.balance("nul-spender").await,
            500,
            "NUL in {field}: the balance is untouched"
        );
    }
    assert_refused_without_server_error(&api, 2.0).await;

    // The same spend without the NUL goes through: the refusal was the NUL.
    let clean = api
        .post(
            CONSUME,
            Some("nul-spender"),
            &json!({"amount": 10, "description": "ab", "idempotencyKey": "key-2"}),
        )
        .await;
    assert_eq!(clean.status, 200, "{clean:?}");
    assert_eq!(env.balance("nul-spender").await, 490);
}

#[tokio::test]
async fn a_nul_in_the_package_or_payer_address_of_an_order_is_400_naming_the_field_and_crossmint_is_not_called()
 {
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let api = env.start_api(&crossmint.api_url, &[]).await.unwrap();

    let cases = [
        ("packageId", json!({"packageId": "pro\u{0}"})),
        (
            "payerAddress",
            json!({"packageId": "pro", "payerAddress": "0xabc\u{0}def"}),
        ),
    ];
    for (field, body) in cases {
        let answer = api.post(ORDERS, Some("nul-buyer"), &body).await;
        assert_nul_refused(&answer, field);
        assert!(
            crossmint.requests().is_empty(),
            "NUL in {field}: Crossmint was called: {:?}",
            crossmint.requests()
        );
        assert_eq!(
            env.count("select count(*) from payment_orders").await,
            0,
            "NUL in {field}: no order recorded"
        );
    }
    assert_refused_without_server_error(&api, 2.0).await;
}

#[tokio::test]
async fn a_nul_in_the_order_id_to_confirm_is_400_naming_the_field_and_uses_none_of_the_rate_limit()
{
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let api = env.start_api(&crossmint.api_url, &[]).await.unwrap();

    let answer = api
        .post(
            CONFIRM,
            Some("nul-confirmer"),
            &json!({"orderId": "order\u{0}1"}),
        )
        .await;
    assert_nul_refused(&answer, "orderId");
    assert_eq!(
        env.count("select count(*) from api_rate_limits").await,
        0,
        "a refused request takes nothing from the confirm rate limit"
    );
    assert_refused_without_server_error(&api, 1.0).await;
}

#[tokio::test]
async fn a_token_sub_with_a_nul_is_400_one_over_256_bytes_is_401_and_exactly_256_is_accepted() {
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let api = env.start_api(&crossmint.api_url, &[]).await.unwrap();
    let exp = now() + 3600;

    let (status, body) = credits_with(&api, &token_expiring("user\u{0}1", exp)).await;
    assert_eq!(status, 400, "NUL in sub: {body}");
    assert_eq!(body["code"], "INVALID_REQUEST", "NUL in sub: {body}");
    assert_eq!(body["details"]["field"], "token sub", "NUL in sub: {body}");

    let (status, body) = credits_with(&api, &token_expiring(&"u".repeat(257), exp)).await;
    assert_eq!(status, 401, "257-byte sub: {body}");
    assert_eq!(body["code"], "UNAUTHORIZED", "257-byte sub: {body}");

    // Bytes, not characters: 128 two-byte characters plus one byte is 257.
    let (status, body) =
        credits_with(&api, &token_expiring(&format!("{}u", "é".repeat(128)), exp)).await;
    assert_eq!(status, 401, "257-byte sub of 129 characters: {body}");

    let exact = "u".repeat(256);
    let (status, body) = credits_with(&api, &token_expiring(&exact, exp)).await;
    assert_eq!(status, 200, "256-byte sub: {body}");
    assert_eq!(body["userId"], exact.as_str(), "256-byte sub: {body}");

    assert_refused_without_server_error(&api, 1.0).await;
}

#[tokio::test]
async fn a_token_living_longer_than_the_lifetime_bound_is_401_and_a_shorter_one_is_accepted() {
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let api = env.start_api(&crossmint.api_url, &[]).await.unwrap();

    let ten_years = now() + 10 * 365 * 24 * 3600;
    let (status, body) = credits_with(&api, &token_expiring("long-lived", ten_years)).await;
    assert_eq!(status, 401, "a ten-year token: {body}");
    assert_eq!(body["code"], "UNAUTHORIZED", "a ten-year token: {body}");

    let (status, body) = credits_with(&api, &token_expiring("day-user", now() + 23 * 3600)).await;
    assert_eq!(
        status, 200,
        "a 23-hour token under the default bound: {body}"
    );

    let short = env
        .start_api(
            &crossmint.api_url,
            &[("AUTH_MAX_TOKEN_LIFETIME_SECS", "60")],
        )
        .await
        .unwrap();
    let (status, body) = credits_with(&short, &token_expiring("hour-user", now() + 3600)).await;
    assert_eq!(status, 401, "a one-hour token under a 60 s bound: {body}");
    assert_eq!(body["code"], "UNAUTHORIZED", "{body}");
    let (status, body) = credits_with(&short, &token_expiring("minute-user", now() + 50)).await;
    assert_eq!(status, 200, "a 50 s token under a 60 s bound: {body}");
}

#[tokio::test]
async fn a_body_over_64_kib_is_413_payload_too_large_and_nothing_happens() {
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let api = env.start_api(&crossmint.api_url, &[]).await.unwrap();
    let padding = "x".repeat(70 * 1024);

    let spend = api
        .post(
            CONSUME,
            Some("big-spender"),
            &json!({"amount": 1, "description": padding, "idempotencyKey": "big"}),
        )
        .await;
    assert_eq!(spend.status, 413, "70 KiB spend: {spend:?}");
    assert_eq!(
        spend.body["code"], "PAYLOAD_TOO_LARGE",
        "70 KiB spend: {spend:?}"
    );

    let order = api
        .post(
            ORDERS,
            Some("big-spender"),
            &json!({"packageId": "pro", "payerAddress": padding}),
        )
        .await;
    assert_eq!(order.status, 413, "70 KiB order: {order:?}");
    assert_eq!(
        order.body["code"], "PAYLOAD_TOO_LARGE",
        "70 KiB order: {order:?}"
    );
    assert!(crossmint.requests().is_empty(), "Crossmint was not called");
    assert_eq!(env.count("select count(*) from credit_spends").await, 0);
}

/// `CORS_ALLOWED_ORIGINS`: a frontend on an allowed origin gets its
/// preflight answered and the CORS headers on the answer; any other origin
/// gets none (the browser then refuses it); without the variable, no CORS
/// header at all.
#[tokio::test]
async fn only_allowed_origins_get_cors_headers() {
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let api = env
        .start_api(
            &crossmint.api_url,
            &[(
                "CORS_ALLOWED_ORIGINS",
                "https://app.example,http://localhost:5173",
            )],
        )
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        http.request(reqwest::Method::OPTIONS, format!("{}{ORDERS}", api.base))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type,idempotency-key",
            )
            .send()
    };
    let allowed = preflight("https://app.example").await.unwrap();
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let methods = allowed.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        methods.contains("POST") && methods.contains("GET"),
        "{methods}"
    );
    let other = preflight("https://evil.example").await.unwrap();
    assert!(
        !other.headers().contains_key("access-control-allow-origin"),
        "{:?}",
        other.headers()
    );
    let packages = http
        .get(format!("{}/api/payments/packages", api.base))
        .header("origin", "http://localhost:5173")
        .send()
        .await
        .unwrap();
    assert_eq!(packages.status(), 200);
    assert_eq!(
        packages.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );

    // Without the variable: no CORS header, whatever the origin.
    let plain = env.start_api(&crossmint.api_url, &[]).await.unwrap();
    let answer = http
        .get(format!("{}/api/payments/packages", plain.base))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert!(!answer.headers().contains_key("access-control-allow-origin"));
    // A wildcard stops start-up, naming the variable.
    let refused = env
        .start_api(&crossmint.api_url, &[("CORS_ALLOWED_ORIGINS", "*")])
        .await;
    let error = format!("{:#}", refused.err().expect("a wildcard is refused"));
    assert!(error.contains("CORS_ALLOWED_ORIGINS"), "{error}");
}
