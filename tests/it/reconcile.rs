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

/// Stripe's side: an event Stripe could not deliver, and a paid session
/// whose event never reached us, are each found and granted once; a dry
/// run records nothing; `--order` asks about one order.
#[tokio::test]
async fn reconcile_for_stripe_records_undelivered_events_and_paid_sessions_once() {
    use ledgerhook_tests::fake_stripe::{FAKE_SECRET_KEY, FAKE_WEBHOOK_SECRET, FakeStripe};

    let env = TestEnv::new().await.unwrap();
    let _worker = env.start_worker(&[]).await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let stripe = FakeStripe::start().await.unwrap();
    let stripe_env = [
        ("STRIPE_API_URL", stripe.api_url.as_str()),
        ("STRIPE_SECRET_KEY", FAKE_SECRET_KEY),
    ];
    let api = env
        .start_api(
            &crossmint.api_url,
            &[
                stripe_env[0],
                stripe_env[1],
                ("STRIPE_SUCCESS_URL", "https://shop.example/paid"),
                ("STRIPE_CANCEL_URL", "https://shop.example/cancelled"),
            ],
        )
        .await
        .unwrap();
    let mut orders = Vec::new();
    for user in ["stripe-lost-event", "stripe-lost-session", "stripe-unpaid"] {
        let created = api
            .post(
                "/api/payments/orders",
                Some(user),
                &json!({"packageId": "starter", "provider": "stripe"}),
            )
            .await;
        assert_eq!(created.status, 201, "{created:?}");
        orders.push(created.body["orderId"].as_str().unwrap().to_owned());
    }
    // Our endpoint is down when the first is paid: Stripe keeps the event
    // as undelivered. The second's event never came at all.
    stripe.send_events_to("http://127.0.0.1:9/webhooks/stripe", FAKE_WEBHOOK_SECRET);
    assert!(stripe.pay(&orders[0]).await.is_err());
    stripe.pay_without_event(&orders[1]).unwrap();

    let reconcile = async |extra: &[&str]| {
        let mut args = vec![
            "--json",
            "--operator",
            "ops",
            "reconcile",
            "--provider",
            "stripe",
        ];
        args.extend_from_slice(extra);
        let run = env.admin_run(&args, &stripe_env).await.unwrap();
        assert_eq!(run.code, Some(0), "{run:?}");
        run.json()
    };
    let results = |report: &serde_json::Value| -> Vec<(String, String)> {
        report["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["providerOrderId"].as_str().unwrap().to_owned(),
                    o["result"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };

    let dry = reconcile(&["--older-than", "0s", "--dry-run"]).await;
    assert_eq!(dry["events"][0]["result"], "would_record", "{dry}");
    assert_eq!(dry["events"][0]["eventType"], "checkout.session.completed");
    assert_eq!(
        results(&dry),
        [
            (orders[0].clone(), "already_recorded".into()),
            (orders[1].clone(), "would_record".into()),
            (orders[2].clone(), "not_paid".into()),
        ]
    );
    assert_eq!(
        env.count("select count(*) from webhook_deliveries").await,
        0
    );

    let run = reconcile(&["--older-than", "0s"]).await;
    assert_eq!(run["events"][0]["result"], "recorded", "{run}");
    assert_eq!(run["events"][0]["outcome"], "granted");
    assert_eq!(results(&run)[1], (orders[1].clone(), "recorded".into()));
    assert_eq!(run["orders"][1]["outcome"], "granted");
    assert_eq!(run["orders"][1]["stripePaymentStatus"], "paid");
    assert_eq!(env.balance("stripe-lost-event").await, 500);
    assert_eq!(env.balance("stripe-lost-session").await, 500);
    assert_eq!(env.balance("stripe-unpaid").await, 0);

    // Again: nothing new; and one order alone.
    let again = reconcile(&["--older-than", "0s"]).await;
    assert_eq!(again["events"][0]["result"], "already_recorded", "{again}");
    assert_eq!(again["counts"]["recorded"], serde_json::Value::Null);
    let one = reconcile(&["--order", &orders[2]]).await;
    assert_eq!(
        one["events"],
        json!([]),
        "--order asks about that order only"
    );
    assert_eq!(results(&one), [(orders[2].clone(), "not_paid".into())]);
    // Two grants in all: every run recorded each payment once.
    assert_eq!(env.count("select count(*) from credit_ledger").await, 2);
}
