//! The frontend's API: the catalogue, creating orders with Crossmint (a fake
//! one the test starts), and who may call what.

use ledgerhook_tests::api_client::token_expiring;
use ledgerhook_tests::fake_crossmint::{Behaviour, FakeCrossmint};
use ledgerhook_tests::harness::TestEnv;
use ledgerhook_tests::scrape;
use serde_json::json;

#[tokio::test]
async fn the_catalogue_lists_the_three_packages_with_exact_prices() {
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let api = env.start_api(&crossmint.api_url, &[]).await.unwrap();

    let answer = api.get("/api/payments/packages", None).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let packages = answer.body["packages"].as_array().unwrap();
    let summary: Vec<(String, String, i64)> = packages
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_owned(),
                p["price"].as_str().unwrap().to_owned(),
                p["totalCredits"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("starter".into(), "10.000000".into(), 500),
            ("pro".into(), "50.000000".into(), 3300),
            ("vip".into(), "100.000000".into(), 9600),
        ]
    );
    assert_eq!(packages[1]["badge"], "HOT");
}

#[tokio::test]
async fn an_order_is_created_with_crossmint_and_recorded_pending_before_the_answer() {
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let api = env
        .start_api(&crossmint.api_url, &[("CREDIT_VALIDITY_DAYS", "pro=365")])
        .await
        .unwrap();

    let answer = api
        .post(
            "/api/payments/orders",
            Some("buyer-1"),
            &json!({"packageId": "pro"}),
        )
        .await;
    assert_eq!(answer.status, 201, "{answer:?}");
    let order_id = answer.body["orderId"].as_str().unwrap();
    assert!(
        answer.body["clientSecret"]
            .as_str()
            .unwrap()
            .starts_with("fake-client-secret-")
    );
    assert_eq!(answer.body["amount"], "50.000000");
    assert_eq!(answer.body["credits"], 3300);
    assert_eq!(answer.body["creditsValidDays"], 365);

    let (user, package, amount, status, created_from, valid_days): (
        String,
        String,
        String,
        String,
        String,
        Option<i32>,
    ) = sqlx::query_as(
        "select user_id, package_id, amount::text, status, created_from, credits_valid_days
         from payment_orders where provider_order_id = $1",
    )
    .bind(order_id)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        (
            user.as_str(),
            package.as_str(),
            amount.as_str(),
            status.as_str(),
            created_from.as_str()
        ),
        ("buyer-1", "pro", "50.000000", "pending", "api")
    );
    assert_eq!(valid_days, Some(365));

    // What Crossmint was asked for: the package's price, in USDT.
    let sent = crossmint.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["lineItems"]["callData"]["totalPrice"], "50.000000");
    assert_eq!(sent[0]["payment"]["currency"], "usdt");
    assert_eq!(
        sent[0]["lineItems"]["collectionLocator"],
        "crossmint:fake-collection"
    );
}

#[tokio::test]
async fn an_unknown_package_is_400_invalid_package_and_crossmint_is_not_called() {
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let api = env.start_api(&crossmint.api_url, &[]).await.unwrap();

    let answer = api
        .post(
            "/api/payments/orders",
            Some("buyer"),
            &json!({"packageId": "gold"}),
        )
        .await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(answer.body["code"], "INVALID_PACKAGE");
    assert_eq!(answer.body["details"]["packageId"], "gold");
    assert!(crossmint.requests().is_empty());

    let answer = api
        .post(
            "/api/payments/orders",
            Some("buyer"),
            &json!({"package": "pro"}),
        )
        .await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(answer.body["code"], "INVALID_REQUEST");
}

#[tokio::test]
async fn a_crossmint_failure_or_timeout_is_502_and_nothing_is_recorded() {
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let api = env
        .start_api(&crossmint.api_url, &[("CROSSMINT_TIMEOUT_MS", "500")])
        .await
        .unwrap();

    for behaviour in [Behaviour::Fail, Behaviour::Hang] {
        crossmint.behave(behaviour);
        let answer = api
            .post(
                "/api/payments/orders",
                Some("buyer"),
                &json!({"packageId": "vip"}),
            )
            .await;
        assert_eq!(answer.status, 502, "{behaviour:?}: {answer:?}");
        assert_eq!(answer.body["code"], "CROSSMINT_ERROR");
        let text = answer.body.to_string();
        assert!(
            !text.contains("127.0.0.1") && !text.contains("sk_staging"),
            "{text}"
        );
    }
    assert_eq!(env.count("select count(*) from payment_orders").await, 0);
    let metrics = api.service.metrics().await;
    assert_eq!(
        scrape::sum(
            &metrics,
            "ledgerhook_crossmint_failures_total",
            &["reason=\"refused\""]
        ),
        1.0
    );
    assert_eq!(
        scrape::sum(
            &metrics,
            "ledgerhook_crossmint_failures_total",
            &["reason=\"timeout\""]
        ),
        1.0
    );
    assert!(
        !api.service.log().contains("sk_staging_fake"),
        "the API key never reaches the log"
    );
}

#[tokio::test]
async fn without_a_valid_token_every_user_route_is_401_unauthorized() {
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let api = env.start_api(&crossmint.api_url, &[]).await.unwrap();

    for path in ["/api/payments/history", "/api/v1/user/credits"] {
        let answer = api.get(path, None).await;
        assert_eq!(answer.status, 401, "{path}: {answer:?}");
        assert_eq!(answer.body["code"], "UNAUTHORIZED");
    }
    let expired = token_expiring("buyer", chrono::Utc::now().timestamp() - 120);
    let forged = {
        let token = token_expiring("buyer", chrono::Utc::now().timestamp() + 600);
        let (rest, _) = token.rsplit_once('.').unwrap();
        format!("{rest}.AAAA")
    };
    for authorization in [
        format!("Bearer {expired}"),
        format!("Bearer {forged}"),
        "Basic YnV5ZXI6cGFzc3dvcmQ=".to_owned(),
        "Bearer not-a-jwt".to_owned(),
    ] {
        let answer = api
            .post_with_authorization(
                "/api/payments/orders",
                &authorization,
                &json!({"packageId": "pro"}),
            )
            .await;
        assert_eq!(answer.status, 401, "{authorization}: {answer:?}");
        assert_eq!(answer.body["code"], "UNAUTHORIZED");
    }
    assert!(crossmint.requests().is_empty());
}

#[tokio::test]
async fn blank_secrets_stop_start_up_naming_each_variable() {
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let error = env
        .start_api(
            &crossmint.api_url,
            &[("AUTH_JWT_SECRET", ""), ("CROSSMINT_SERVER_API_KEY", " ")],
        )
        .await
        .err()
        .expect("the API must refuse to start")
        .to_string();
    assert!(error.contains("AUTH_JWT_SECRET"), "{error}");
    assert!(error.contains("CROSSMINT_SERVER_API_KEY"), "{error}");
}

#[tokio::test]
async fn the_openapi_document_is_served() {
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let api = env.start_api(&crossmint.api_url, &[]).await.unwrap();
    let answer = api.get("/api/openapi.json", None).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["openapi"], "3.0.3");
    assert!(answer.body["paths"]["/api/v1/user/credits/consume"]["post"].is_object());
    let unknown = api.get("/api/nothing-here", None).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.body["code"], "NOT_FOUND");
}
