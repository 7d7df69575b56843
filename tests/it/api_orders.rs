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

/// One signed-in user once created 5,000 orders in 8.5 s, each a call to
/// the provider and a pending row kept for the payment timeout.
#[tokio::test]
async fn order_creation_is_bounded_per_user_overall_and_by_open_orders() {
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let api = env
        .start_api(
            &crossmint.api_url,
            &[
                ("MAX_PENDING_ORDERS_PER_USER", "3"),
                ("ORDER_RATE_LIMIT_PER_MINUTE", "4"),
                ("ORDER_RATE_LIMIT_GLOBAL_PER_MINUTE", "6"),
            ],
        )
        .await
        .unwrap();
    let order = json!({"packageId": "starter"});
    let create = async |user: &str, key: &str| {
        api.post_with_headers(
            "/api/payments/orders",
            user,
            &[("Idempotency-Key", key)],
            &order,
        )
        .await
    };
    for n in 0..3 {
        let answer = create("greedy", &format!("greedy-{n}")).await;
        assert_eq!(answer.status, 201, "order {n}: {answer:?}");
    }
    // A fourth open order is refused before Crossmint is asked.
    let asked = crossmint.requests().len();
    let open = create("greedy", "greedy-3").await;
    assert_eq!(open.status, 429, "{open:?}");
    assert_eq!(open.body["code"], "TOO_MANY_PENDING_ORDERS");
    assert_eq!(open.body["details"]["openOrders"], 3);
    let wait: u64 = open.retry_after.as_deref().unwrap().parse().unwrap();
    assert!(
        (1700..=1800).contains(&wait),
        "until the oldest expires: {wait}"
    );
    assert_eq!(
        crossmint.requests().len(),
        asked,
        "the provider was not asked"
    );
    // A retry of an order already made is its first answer, limits or not.
    let replayed = create("greedy", "greedy-0").await;
    assert_eq!(replayed.status, 201, "{replayed:?}");
    assert_eq!(replayed.headers["idempotent-replayed"], "true");

    // Once they expire the user may order again, up to 4 in a minute.
    let expire = "update payment_orders set status = 'expired' where user_id = 'greedy'";
    sqlx::query(expire).execute(&env.pool).await.unwrap();
    assert_eq!(create("greedy", "greedy-4").await.status, 201);
    sqlx::query(expire).execute(&env.pool).await.unwrap();
    let fast = create("greedy", "greedy-5").await;
    assert_eq!(fast.status, 429, "{fast:?}");
    assert_eq!(fast.body["code"], "RATE_LIMITED");
    let wait: u64 = fast.retry_after.as_deref().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");

    // Everyone together: 4 orders so far, 6 a minute allowed.
    assert_eq!(create("calm-1", "calm-1").await.status, 201);
    assert_eq!(create("calm-2", "calm-2").await.status, 201);
    let crowded = create("calm-3", "calm-3").await;
    assert_eq!(crowded.status, 429, "{crowded:?}");
    assert_eq!(crowded.body["code"], "RATE_LIMITED");

    let orders: i64 = sqlx::query_scalar("select count(*) from payment_orders")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(orders, 6, "no order recorded for a refused request");
    let page = api.service.metrics().await;
    for (action, count) in [
        ("pending_orders", 1.0),
        ("orders", 1.0),
        ("orders_global", 1.0),
    ] {
        let label = format!("action=\"{action}\"");
        assert_eq!(
            scrape::sum(&page, "ledgerhook_api_rate_limited_total", &[&label]),
            count,
            "{action}"
        );
    }
}
