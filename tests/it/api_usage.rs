//! Usage tracking: each spend adds to the user's count for the day, a
//! replayed spend does not, and a usage write that fails leaves the spend
//! answered and committed as usual (logged and counted).

use std::time::Duration;

use ledgerhook_tests::api_client::Api;
use ledgerhook_tests::fake_crossmint::FakeCrossmint;
use ledgerhook_tests::harness::TestEnv;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

/// Credits a test starts with. Granting goes through the webhook path in
/// the other tests; here only the spend and its usage are under test.
const START: i64 = 1000;

async fn give_credits(env: &TestEnv, user: &str) {
    sqlx::query("insert into user_credits (user_id, balance) values ($1, $2)")
        .bind(user)
        .bind(START)
        .execute(&env.pool)
        .await
        .unwrap();
}

async fn spend(api: &Api, user: &str, amount: i64, key: &str) -> serde_json::Value {
    let answer = api
        .post(
            "/api/v1/user/credits/consume",
            Some(user),
            &json!({"amount": amount, "idempotencyKey": key}),
        )
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.body
}

async fn usage_today(env: &TestEnv, user: &str) -> Option<(i64, i64)> {
    sqlx::query_as(
        "select spends, credits from usage_daily
         where user_id = $1 and day = (now() at time zone 'utc')::date",
    )
    .bind(user)
    .fetch_optional(&env.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn each_spend_counts_in_the_days_usage_and_a_replay_does_not() {
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let api = env.start_api(&crossmint.api_url, &[]).await.unwrap();
    give_credits(&env, "spender").await;
    give_credits(&env, "other").await;

    spend(&api, "spender", 30, "a").await;
    spend(&api, "spender", 45, "b").await;
    let replay = spend(&api, "spender", 45, "b").await;
    assert_eq!(replay["replayed"], true);
    spend(&api, "other", 7, "a").await;

    assert_eq!(usage_today(&env, "spender").await, Some((2, 75)));
    assert_eq!(usage_today(&env, "other").await, Some((1, 7)));
    assert_eq!(
        api.service
            .metric("ledgerhook_usage_write_failures_total", &[])
            .await,
        0.0
    );
}

#[tokio::test]
async fn a_failing_usage_write_does_not_fail_the_spend() {
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let api = env.start_api(&crossmint.api_url, &[]).await.unwrap();
    give_credits(&env, "spender").await;
    // The API has migrated; now its usage table goes away under it.
    sqlx::query("alter table usage_daily rename to usage_daily_gone")
        .execute(&env.pool)
        .await
        .unwrap();

    let answer = spend(&api, "spender", 120, "k1").await;
    assert_eq!(answer["success"], true);
    assert_eq!(answer["remainingCredits"], START - 120);
    assert_eq!(env.balance("spender").await, START - 120);
    assert_eq!(
        env.count("select count(*) from credit_spends where user_id = 'spender'")
            .await,
        1
    );
    let failures = api
        .service
        .metric("ledgerhook_usage_write_failures_total", &[])
        .await;
    assert_eq!(failures, 1.0);
    let line = api
        .service
        .log_line(&["usage not recorded", "usage_daily"], WAIT)
        .await;
    assert!(line.contains("WARN") || line.contains("warn"), "{line}");
    assert_eq!(env.count("select count(*) from usage_daily_gone").await, 0);
}
