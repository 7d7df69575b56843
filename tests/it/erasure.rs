//! `ledgerhook-admin erase-user` (issue 23): a buyer's personal data gone
//! (their deliveries' bodies, their notifications' addresses, their id in
//! every table and in the audit trail), their ledger balanced as before
//! under a pseudonym, the erasure audited; an unknown user and one with a
//! payment still under way refused with a code.

use std::time::Duration;

use ledgerhook_store::credits::{Spend, SpendOutcome, spend};
use ledgerhook_tests::harness::TestEnv;
use ledgerhook_tests::webhook::{new_delivery_id, payment_succeeded};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);
const OPERATOR: &str = "privacy@ops";
const USER: &str = "user_erase_me_01";
const OTHER: &str = "user_keep_me_02";

fn paid_with_email(order: &str, user: &str) -> Value {
    let mut body = payment_succeeded(order, user, "starter", "10");
    body["data"]["payment"]["receiptEmail"] = Value::String(format!("{user}@example.com"));
    body
}

/// Every place a user id is kept, counted for `user`.
const KEYED_BY_USER: &[&str] = &[
    "select count(*) from user_credits where user_id = $1",
    "select count(*) from credit_ledger where user_id = $1",
    "select count(*) from credit_lots where user_id = $1",
    "select count(*) from credit_spends where user_id = $1",
    "select count(*) from usage_daily where user_id = $1",
    "select count(*) from payment_orders where user_id = $1",
    "select count(*) from payment_order_events where strpos(event_data::text, $1) > 0",
    "select count(*) from notifications where strpos(facts::text, $1) > 0",
    "select count(*) from operator_actions
     where strpos(arguments::text || result::text || coalesce(reason, ''), $1) > 0",
    "select count(*) from webhook_deliveries where strpos(convert_from(body, 'UTF8'), $1) > 0",
];

async fn traces_of(env: &TestEnv, user: &str) -> Vec<i64> {
    let mut counts = Vec::new();
    for sql in KEYED_BY_USER {
        counts.push(
            sqlx::query_scalar::<_, i64>(sql)
                .bind(user)
                .fetch_one(&env.pool)
                .await
                .unwrap(),
        );
    }
    counts
}

async fn ledger_sum_and_balance(env: &TestEnv, user: &str) -> (i64, i64) {
    sqlx::query_as(
        "select (select coalesce(sum(credits), 0)::int8 from credit_ledger where user_id = $1),
                (select coalesce(max(balance), 0) from user_credits where user_id = $1)",
    )
    .bind(user)
    .fetch_one(&env.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn erasing_a_user_removes_their_personal_data_and_keeps_their_ledger_balanced_under_a_pseudonym()
 {
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let _worker = env
        .start_worker(&[
            ("NOTIFY_CHANNELS", "email"),
            ("CREDIT_VALIDITY_DAYS", "starter=365"),
        ])
        .await
        .unwrap();
    let api = env.start_api("http://127.0.0.1:1", &[]).await.unwrap();
    // Two purchases of the user's, one of someone else's.
    for (order, user) in [("erase-o1", USER), ("erase-o2", USER), ("keep-o1", OTHER)] {
        let answer = ingester
            .send_as(&new_delivery_id(), &paid_with_email(order, user))
            .await;
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    env.wait_all_processed(3, WAIT).await;
    // A spend (with the product's description), and the operator's looks
    // and grants naming the user.
    let spent = spend(
        &env.pool,
        Spend {
            user_id: USER,
            credits: 120,
            description: Some("portrait of the user's cat"),
            idempotency_key: "spend-1",
            api_key: None,
        },
    )
    .await
    .unwrap();
    assert!(matches!(spent, SpendOutcome::Spent { .. }), "{spent:?}");
    sqlx::query(
        "insert into usage_daily (user_id, day, spends, credits) values ($1, current_date, 1, 120)",
    )
    .bind(USER)
    .execute(&env.pool)
    .await
    .unwrap();
    let granted = env
        .admin_run(
            &[
                "--json",
                "--operator",
                OPERATOR,
                "grant",
                "--user",
                USER,
                "--credits",
                "7",
                "--idempotency-key",
                "ticket-9",
                "--reason",
                "goodwill for user_erase_me_01",
            ],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(granted.code, Some(0), "{granted:?}");
    env.admin(&["audit", USER]).await.unwrap();
    let before = ledger_sum_and_balance(&env, USER).await;
    assert_eq!(before, (500 + 500 - 120 + 7, 887));
    let other_before = ledger_sum_and_balance(&env, OTHER).await;
    assert!(
        traces_of(&env, USER).await.iter().all(|n| *n > 0),
        "{:?}",
        traces_of(&env, USER).await
    );

    // Act
    let run = env
        .admin_run(
            &[
                "--json",
                "--operator",
                OPERATOR,
                "erase-user",
                USER,
                "--reason",
                "GDPR erasure request 42 from user_erase_me_01",
            ],
            &[],
        )
        .await
        .unwrap();

    // Assert: done, under a new pseudonym.
    assert_eq!(run.code, Some(0), "{run:?}");
    let erased = run.json()["result"].clone();
    let pseudonym = erased["pseudonym"].as_str().unwrap().to_owned();
    assert!(pseudonym.starts_with("erased-"), "{erased}");
    assert_eq!(erased["orders"], 2, "{erased}");
    assert_eq!(erased["deliveriesScrubbed"], 2, "{erased}");
    assert_eq!(erased["notificationsScrubbed"], 2, "{erased}");
    // Nothing anywhere names the user any more.
    assert_eq!(traces_of(&env, USER).await, vec![0; KEYED_BY_USER.len()]);
    assert_eq!(
        env.count("select count(*) from notifications where strpos(coalesce(recipient, ''), 'user_erase_me_01') > 0")
            .await,
        0
    );
    // The ledger: the same sums, under the pseudonym; the other user untouched.
    assert_eq!(ledger_sum_and_balance(&env, &pseudonym).await, before);
    assert_eq!(ledger_sum_and_balance(&env, OTHER).await, other_before);
    assert_eq!(
        env.count("select count(*) from credit_spends where description is not null")
            .await,
        0
    );
    // Their deliveries' bodies are gone, hashes kept; the other's are whole.
    assert_eq!(
        env.count(
            "select count(*) from webhook_deliveries d join delivery_keys k using (provider, delivery_id)
             where d.scrubbed_at is not null and octet_length(d.body) = 0 and k.body_sha256 is not null"
        )
        .await,
        2
    );
    assert_eq!(
        env.count(
            "select count(*) from webhook_deliveries
             where strpos(convert_from(body, 'UTF8'), 'user_keep_me_02@example.com') > 0"
        )
        .await,
        1
    );
    // The lineage: every ledger entry still names its delivery row.
    assert_eq!(
        env.count(
            "select count(*) from credit_ledger l join webhook_deliveries d on d.id = l.delivery_id"
        )
        .await,
        3
    );
    // Audited: the operator, the reason (the id replaced), the pseudonym.
    let (operator, reason, result): (String, String, Value) = sqlx::query_as(
        "select operator, reason, result from operator_actions where command = 'erase-user'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(operator, OPERATOR);
    assert_eq!(reason, format!("GDPR erasure request 42 from {pseudonym}"));
    assert_eq!(result["pseudonym"], pseudonym.as_str());
    // The API knows nothing of the old id; the pseudonym holds the balance.
    let old = api.get("/api/v1/user/credits", Some(USER)).await;
    assert_eq!(old.status, 200, "{old:?}");
    assert_eq!(old.body["credits"], 0, "{old:?}");
    let history = api.get("/api/v1/user/credits/ledger", Some(USER)).await;
    assert_eq!(history.status, 200, "{history:?}");
    assert_eq!(history.body["entries"], Value::Array(vec![]), "{history:?}");
    let kept = api.get("/api/v1/user/credits", Some(&pseudonym)).await;
    assert_eq!(kept.body["credits"], 887, "{kept:?}");

    // Again: nothing is kept under that id.
    let again = env
        .admin_run(
            &[
                "--json",
                "--operator",
                OPERATOR,
                "erase-user",
                USER,
                "--reason",
                "twice",
            ],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(again.code, Some(3), "{again:?}");
    assert_eq!(again.json()["refused"], "USER_NOT_FOUND");
    // The sender's retry of one of the user's payments is a duplicate: its
    // body (with the address) is not recorded again.
    let delivery_id: String = sqlx::query_scalar(
        "select delivery_id from webhook_deliveries where scrubbed_at is not null limit 1",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    let retry = ingester
        .send_as(&delivery_id, &paid_with_email("erase-o1", USER))
        .await;
    assert_eq!(retry.body["status"], "duplicate", "{retry:?}");
    assert_eq!(traces_of(&env, USER).await, vec![0; KEYED_BY_USER.len()]);
}

#[tokio::test]
async fn an_unknown_user_and_one_with_a_payment_under_way_are_refused_and_nothing_changes() {
    let env = TestEnv::new().await.unwrap();
    env.create_order("waiting-order", "waiting-user", "pro")
        .await;

    let unknown = env
        .admin_run(
            &[
                "--json",
                "--operator",
                OPERATOR,
                "erase-user",
                "nobody-at-all",
                "--reason",
                "r",
            ],
            &[],
        )
        .await
        .unwrap();
    let waiting = env
        .admin_run(
            &[
                "--json",
                "--operator",
                OPERATOR,
                "erase-user",
                "waiting-user",
                "--reason",
                "r",
            ],
            &[],
        )
        .await
        .unwrap();
    let without_operator = env
        .admin_run(&["erase-user", "waiting-user", "--reason", "r"], &[])
        .await
        .unwrap();

    assert_eq!(unknown.code, Some(3), "{unknown:?}");
    assert_eq!(unknown.json()["refused"], "USER_NOT_FOUND");
    assert_eq!(waiting.code, Some(3), "{waiting:?}");
    assert_eq!(waiting.json()["refused"], "USER_HAS_IN_FLIGHT_WORK");
    assert_eq!(waiting.json()["inFlight"]["awaitingPayment"], 1);
    assert_eq!(without_operator.code, Some(2), "{without_operator:?}");
    assert_eq!(
        env.count("select count(*) from payment_orders where user_id = 'waiting-user'")
            .await,
        1
    );
    // Both refusals audited; the unknown id is not written down.
    assert_eq!(
        env.count("select count(*) from operator_actions where command = 'erase-user'")
            .await,
        2
    );
    assert_eq!(
        env.count("select count(*) from operator_actions where strpos(arguments::text || result::text, 'nobody-at-all') > 0")
            .await,
        0
    );
}
