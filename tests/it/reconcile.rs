//! Reconcile, the runbook for a webhook that never came: the worker's
//! schedule asks (the fake) Crossmint about orders still pending, records a
//! paid one's answer as a delivery and grants it through the same path, once;
//! the webhook arriving late is then a duplicate.

use std::time::Duration;

use ledgerhook_tests::fake_crossmint::{Behaviour, FAKE_API_KEY, FakeCrossmint};
use ledgerhook_tests::harness::{TestEnv, eventually};
use ledgerhook_tests::webhook::payment_succeeded;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_payment_whose_webhook_never_came_is_granted_once_by_reconcile() {
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let api = env.start_api(&crossmint.api_url, &[]).await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();

    let mut orders = Vec::new();
    for user in ["paid-buyer", "unpaid-buyer"] {
        let created = api
            .post(
                "/api/payments/orders",
                Some(user),
                &json!({"packageId": "pro"}),
            )
            .await;
        assert_eq!(created.status, 201, "{created:?}");
        orders.push(created.body["orderId"].as_str().unwrap().to_owned());
    }
    let (paid, unpaid) = (&orders[0], &orders[1]);

    // Crossmint is down at first: reconcile learns nothing and records nothing.
    crossmint.behave(Behaviour::Fail);
    let worker = env
        .start_worker(&[
            ("RECONCILE_INTERVAL_SECS", "1"),
            ("RECONCILE_OLDER_THAN_SECS", "0"),
            ("CROSSMINT_API_URL", &crossmint.api_url),
            ("CROSSMINT_SERVER_API_KEY", FAKE_API_KEY),
        ])
        .await
        .unwrap();
    worker
        .metrics_once(
            "ledgerhook_reconcile_orders_total",
            &["result=\"failed\""],
            2.0,
        )
        .await;
    assert_eq!(
        env.count("select count(*) from webhook_deliveries").await,
        0
    );

    // Crossmint is back, and says one order was paid (no webhook came).
    crossmint.behave(Behaviour::Answer);
    assert!(crossmint.pay(paid, "50.00"));
    env.wait_for_count(
        "select count(*) from payment_orders where status = 'completed'",
        1,
        WAIT,
    )
    .await;
    assert_eq!(env.balance("paid-buyer").await, 3300);
    assert_eq!(env.balance("unpaid-buyer").await, 0);
    let (provider, delivery_id, outcome): (String, String, Option<String>) =
        sqlx::query_as("select provider, delivery_id, outcome from webhook_deliveries")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(provider, "reconcile");
    assert_eq!(delivery_id, format!("reconcile:{paid}"));
    assert_eq!(outcome.as_deref(), Some("granted"));
    let status: String =
        sqlx::query_scalar("select status from payment_orders where provider_order_id = $1")
            .bind(unpaid)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(status, "pending");

    // The schedule keeps asking about the unpaid order only.
    let lookups_before = crossmint.lookups().len();
    eventually(WAIT, async || {
        let later: Vec<String> = crossmint.lookups()[lookups_before..].to_vec();
        if later.iter().any(|id| id == paid) {
            panic!("asked again about the order already granted: {later:?}");
        }
        if later.iter().filter(|id| *id == unpaid).count() >= 2 {
            Ok(())
        } else {
            Err(format!("lookups since: {later:?}"))
        }
    })
    .await;

    // The webhook finally arrives: a duplicate, nothing more granted.
    let late = payment_succeeded(paid, "paid-buyer", "pro", "50.00");
    assert_eq!(ingester.send(&late).await.status, 200);
    env.wait_all_processed(2, WAIT).await;
    assert_eq!(env.balance("paid-buyer").await, 3300);
    assert_eq!(
        env.count("select count(*) from credit_ledger where kind = 'purchase_grant'")
            .await,
        1
    );
    assert_eq!(
        env.count("select count(*) from webhook_deliveries where outcome = 'duplicate'")
            .await,
        1
    );
    let page = worker
        .metrics_once("ledgerhook_duplicate_orders_total", &[], 1.0)
        .await;
    assert_eq!(
        ledgerhook_tests::scrape::sum(
            &page,
            "ledgerhook_reconcile_orders_total",
            &["result=\"recorded\""]
        ),
        1.0,
        "recorded once, whatever the runs in between saw"
    );
}

#[tokio::test]
async fn the_operator_runs_reconcile_and_sees_what_crossmint_said() {
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let api = env.start_api(&crossmint.api_url, &[]).await.unwrap();
    let _worker = env.start_worker(&[]).await.unwrap();

    let mut orders = Vec::new();
    for user in ["support-case", "still-paying"] {
        let created = api
            .post(
                "/api/payments/orders",
                Some(user),
                &json!({"packageId": "starter"}),
            )
            .await;
        assert_eq!(created.status, 201, "{created:?}");
        orders.push(created.body["orderId"].as_str().unwrap().to_owned());
    }
    assert!(crossmint.pay(&orders[0], "10.00"));
    let crossmint_env = [
        ("CROSSMINT_API_URL", crossmint.api_url.as_str()),
        ("CROSSMINT_SERVER_API_KEY", FAKE_API_KEY),
    ];

    // Orders younger than the default 10 minutes are left alone.
    let young = env
        .admin_run(
            &["--json", "--operator", "ops", "reconcile"],
            &crossmint_env,
        )
        .await
        .unwrap();
    assert_eq!(young.code, Some(0), "{young:?}");
    assert_eq!(young.json()["orders"], json!([]));
    assert!(crossmint.lookups().is_empty());

    let run = env
        .admin_run(
            &[
                "--json",
                "--operator",
                "ops",
                "reconcile",
                "--older-than",
                "0s",
            ],
            &crossmint_env,
        )
        .await
        .unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    let report = run.json();
    let found: Vec<(String, String, Option<String>)> = report["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["providerOrderId"].as_str().unwrap().to_owned(),
                o["result"].as_str().unwrap().to_owned(),
                o["outcome"].as_str().map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (orders[0].clone(), "recorded".into(), Some("granted".into())),
            (orders[1].clone(), "not_paid".into(), None),
        ]
    );
    assert_eq!(env.balance("support-case").await, 500);

    // Again: nothing new is recorded or granted; the text names each order.
    let again = env
        .admin_run(
            &["--operator", "ops", "reconcile", "--older-than", "0s"],
            &crossmint_env,
        )
        .await
        .unwrap();
    assert_eq!(again.code, Some(0), "{again:?}");
    assert!(
        again.stdout.contains(&orders[1]) && again.stdout.contains("not_paid"),
        "{}",
        again.stdout
    );
    assert!(
        again
            .stdout
            .contains("1 orders asked about: 0 paid and sent to the workers"),
        "{}",
        again.stdout
    );
    assert_eq!(env.balance("support-case").await, 500);
    assert_eq!(
        env.count("select count(*) from operator_actions where command = 'reconcile'")
            .await,
        3,
        "one audit row per run"
    );
    let audited: Option<String> = sqlx::query_scalar(
        "select operator from operator_actions where command = 'reconcile'
         and result -> 'recorded' ? $1",
    )
    .bind(format!("reconcile:{}", orders[0]))
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(audited.as_deref(), Some("ops"));

    // Without an operator it is a usage error; without the Crossmint key it
    // refuses to start and says why.
    let anonymous = env
        .admin_run(&["reconcile", "--older-than", "0s"], &crossmint_env)
        .await
        .unwrap();
    assert_eq!(anonymous.code, Some(2), "{anonymous:?}");
    let keyless = env
        .admin_run(
            &["--operator", "ops", "reconcile", "--older-than", "0s"],
            &[("CROSSMINT_API_URL", crossmint.api_url.as_str())],
        )
        .await
        .unwrap();
    assert_eq!(keyless.code, Some(1), "{keyless:?}");
    assert!(
        keyless.stderr.contains("CROSSMINT_SERVER_API_KEY"),
        "{keyless:?}"
    );
}
