//! Verified but wrong: bodies that passed the signature check yet must never
//! move money. One test per case; each ends with the delivery held for
//! review, parked with its reason, or recorded as ignored, and counted.

use std::time::Duration;

use ledgerhook_tests::harness::{Ingester, Service, TestEnv};
use ledgerhook_tests::scrape;
use ledgerhook_tests::webhook::payment_succeeded;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

/// A world with an ingester and a worker that gives up quickly, so that a
/// parked case does not wait out the production retry schedule.
async fn world() -> (TestEnv, Ingester, Service) {
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let worker = env
        .start_worker(&[
            ("WORKER_RETRY_INITIAL_MS", "20"),
            ("WORKER_RETRY_ATTEMPTS", "2"),
        ])
        .await
        .unwrap();
    (env, ingester, worker)
}

/// A starter payment (10 USDT expected) whose received amount is `amount`
/// (`None`: no amount at all).
fn paid_with_amount(n: usize, amount: Option<Value>) -> Value {
    let mut body = payment_succeeded(
        &format!("amount-{n}"),
        &format!("user-{n}"),
        "starter",
        "10",
    );
    match amount {
        Some(amount) => body["data"]["payment"]["received"]["amount"] = amount,
        None => {
            body["data"]["payment"]
                .as_object_mut()
                .unwrap()
                .remove("received");
        }
    }
    body
}

/// Every body is accepted (the signature is good), processed, and ends held
/// for review: no credit, the order pending with a reason, a conflict counted.
async fn expect_held(bodies: &[Value]) {
    let (env, ingester, worker) = world().await;
    for body in bodies {
        assert_eq!(ingester.send(body).await.status, 200, "{body}");
    }
    let count = bodies.len() as i64;
    env.wait_all_processed(count, WAIT).await;

    assert_eq!(env.count("select count(*) from credit_ledger").await, 0);
    assert_eq!(
        env.count("select coalesce(sum(balance), 0)::int8 from user_credits")
            .await,
        0
    );
    assert_eq!(
        env.count("select count(*) from webhook_deliveries where outcome = 'conflict'")
            .await,
        count
    );
    assert_eq!(
        env.count(
            "select count(*) from payment_orders
             where review_reason is not null and status = 'pending'"
        )
        .await,
        count
    );
    assert_eq!(
        scrape::sum(
            &worker
                .metrics_once("ledgerhook_order_conflicts_total", &[], count as f64)
                .await,
            "ledgerhook_order_conflicts_total",
            &[]
        ),
        count as f64
    );
}

/// The body is accepted, then parked (never granted) with a reason
/// containing `reason`; the parked metric counts it.
async fn expect_parked(body: Value, reason: &str) {
    let (env, ingester, worker) = world().await;
    assert_eq!(ingester.send(&body).await.status, 200);
    env.wait_all_processed(1, WAIT).await;

    let detail: String = sqlx::query_scalar(
        "select outcome_detail from webhook_deliveries where outcome = 'parked'",
    )
    .fetch_one(&env.pool)
    .await
    .expect("the delivery is parked");
    assert!(detail.contains(reason), "{detail}");
    assert_eq!(env.count("select count(*) from credit_ledger").await, 0);
    assert_eq!(
        scrape::sum(
            &worker
                .metrics_once("ledgerhook_parked_total", &[], 1.0)
                .await,
            "ledgerhook_parked_total",
            &[]
        ),
        1.0
    );
}

#[tokio::test]
async fn negative_amounts_are_held() {
    expect_held(&[
        paid_with_amount(0, Some(json!("-10.00"))),
        paid_with_amount(1, Some(json!("-0.000001"))),
    ])
    .await;
}

#[tokio::test]
async fn zero_amounts_are_held() {
    expect_held(&[
        paid_with_amount(0, Some(json!("0"))),
        paid_with_amount(1, Some(json!("0.00"))),
    ])
    .await;
}

#[tokio::test]
async fn absurd_amounts_are_held() {
    expect_held(&[
        paid_with_amount(0, Some(json!("99999999999999999999"))),
        paid_with_amount(1, Some(json!("10.0000001"))),
        paid_with_amount(2, Some(json!("1e1"))),
    ])
    .await;
}

#[tokio::test]
async fn non_numeric_or_missing_amounts_are_held() {
    expect_held(&[
        paid_with_amount(0, Some(json!("ten"))),
        paid_with_amount(1, Some(json!(10.5))),
        paid_with_amount(2, Some(json!({"value": "10"}))),
        paid_with_amount(3, Some(json!(""))),
        paid_with_amount(4, None),
    ])
    .await;
}

#[tokio::test]
async fn amounts_sent_as_json_numbers_are_compared_exactly_never_through_a_float() {
    // Through f64 both were 10.0 and granted a 10 USDT package.
    let number = |text: &str| serde_json::from_str::<Value>(text).unwrap();
    let bodies = [
        paid_with_amount(0, Some(number("9.99999999999999999999"))),
        paid_with_amount(1, Some(number("10.0000000000000001"))),
    ];
    for body in &bodies {
        let sent = body.to_string();
        assert!(
            sent.contains("9.99999999999999999999") || sent.contains("10.0000000000000001"),
            "the number's exact text is what is sent: {sent}"
        );
    }
    expect_held(&bodies).await;
}

#[tokio::test]
async fn numbers_no_float_can_hold_elsewhere_in_a_body_do_not_stop_its_grant() {
    // The ingester accepts them as JSON; the worker must read them too.
    let (env, ingester, _worker) = world().await;
    let mut body = payment_succeeded("o-bignum", "u-bignum", "starter", "10");
    let huge = format!(r#"{{"exponent": 1e400, "digits": {}}}"#, "7".repeat(5_000));
    body["data"]["extra"] = serde_json::from_str(&huge).unwrap();
    assert_eq!(ingester.send(&body).await.status, 200);
    env.wait_all_processed(1, WAIT).await;
    assert_eq!(env.balance("u-bignum").await, 500);
}

#[tokio::test]
async fn a_nul_inside_an_order_id_is_recorded_and_parked_naming_the_field() {
    // PostgreSQL text cannot hold U+0000: before, this was parked as
    // "database refused the change".
    expect_parked(
        payment_succeeded("o-\u{0}-nul", "u-nul", "starter", "10"),
        "`orderId` contains a NUL character",
    )
    .await;
}

#[tokio::test]
async fn a_wrong_or_missing_currency_is_held() {
    let mut usdc = payment_succeeded("currency-0", "user-0", "starter", "10");
    usdc["data"]["payment"]["received"]["currency"] = json!("usdc");
    // No currency on the payment nor on what was received.
    let mut none = payment_succeeded("currency-1", "user-1", "starter", "10");
    let payment = &mut none["data"]["payment"];
    payment["received"]
        .as_object_mut()
        .unwrap()
        .remove("currency");
    payment.as_object_mut().unwrap().remove("currency");
    expect_held(&[usdc, none]).await;
}

#[tokio::test]
async fn an_unknown_package_is_parked_naming_the_order() {
    expect_parked(
        payment_succeeded("pkg-1", "pkg-user", "enterprise", "10"),
        "pkg-1",
    )
    .await;
}

#[tokio::test]
async fn json_without_an_order_id_is_parked() {
    let no_order =
        json!({"type": "orders.payment.succeeded", "data": {"payment": {"status": "completed"}}});
    expect_parked(no_order, "order").await;
}

#[tokio::test]
async fn json_that_is_not_an_object_is_parked() {
    expect_parked(
        json!(["orders.payment.succeeded"]),
        "JSON but not an object",
    )
    .await;
}

#[tokio::test]
async fn an_unknown_event_type_is_recorded_as_ignored_and_counted() {
    let (env, ingester, worker) = world().await;
    let unknown = json!({"type": "orders.refund.requested", "data": {"orderId": "o-x"}});
    assert_eq!(ingester.send(&unknown).await.status, 200);
    env.wait_all_processed(1, WAIT).await;

    assert_eq!(
        env.count("select count(*) from webhook_deliveries where outcome = 'ignored'")
            .await,
        1
    );
    assert_eq!(env.count("select count(*) from credit_ledger").await, 0);
    assert_eq!(env.count("select count(*) from payment_orders").await, 0);
    assert_eq!(
        scrape::sum(
            &worker
                .metrics_once(
                    "ledgerhook_worker_deliveries_total",
                    &["outcome=\"ignored\""],
                    1.0
                )
                .await,
            "ledgerhook_worker_deliveries_total",
            &["outcome=\"ignored\""]
        ),
        1.0
    );
}

#[tokio::test]
async fn ids_full_of_quotes_semicolons_and_unicode_are_data_not_sql() {
    let (env, ingester, _worker) = world().await;
    let order_id = "o'; drop table payment_orders;--\"é🙂\u{202e}";
    let user_id = "u\"; select 1 -- ☃";
    let hostile = payment_succeeded(order_id, user_id, "vip", "100.00");
    assert_eq!(ingester.send(&hostile).await.status, 200);
    env.wait_all_processed(1, WAIT).await;

    assert_eq!(env.balance(user_id).await, 9600);
    let stored: String =
        sqlx::query_scalar("select provider_order_id from payment_orders where user_id = $1")
            .bind(user_id)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(stored, order_id);
}
