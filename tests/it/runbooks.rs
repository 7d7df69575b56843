//! The operator's runbooks as `ledgerhook-admin` commands: the pause switch
//! across several workers, duplicates, revoke (with and without spent
//! credits), the manual grant, the user's audit, `--json`, the audit rows,
//! and `--help` that touches nothing.

use std::time::{Duration, Instant};

use ledgerhook_domain::PaymentProvider;
use ledgerhook_store::credits::{Spend, SpendOutcome, spend};
use ledgerhook_tests::harness::processes::run_admin;
use ledgerhook_tests::harness::{Service, TestEnv, eventually, seen};
use ledgerhook_tests::stripe_webhook::{checkout_completed, new_event_id};
use ledgerhook_tests::webhook::{new_delivery_id, payment_succeeded};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);
/// The runbook's promise: workers stop taking messages within 2 s.
const PAUSE_TAKES_EFFECT: Duration = Duration::from_secs(2);
/// How long deliveries sent during a pause are watched staying unprocessed.
const HELD_FOR: Duration = Duration::from_secs(3);

const OPERATOR: &str = "alice@ops";
/// Deliveries sent just before the pause.
const BURST: i64 = 40;

async fn admin_json(env: &TestEnv, args: &[&str]) -> Value {
    let mut all = vec!["--json", "--operator", OPERATOR];
    all.extend_from_slice(args);
    let run = env.admin_run(&all, &[]).await.unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    run.json()
}

async fn paused_gauge(worker: &Service) -> f64 {
    worker.metric("ledgerhook_processing_paused", &[]).await
}

async fn audit_rows(env: &TestEnv, command: &str) -> i64 {
    sqlx::query_scalar("select count(*) from operator_actions where command = $1")
        .bind(command)
        .fetch_one(&env.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_pause_holds_every_workers_deliveries_until_resumed_and_then_each_is_processed_once() {
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let workers = [
        env.start_worker(&[]).await.unwrap(),
        env.start_worker(&[]).await.unwrap(),
    ];
    // A burst, and the pause while it is being processed: what the workers
    // hold is finished and acknowledged, what they prefetched goes back.
    let burst = futures_util::future::join_all((0..BURST).map(|n| {
        let body = payment_succeeded(&format!("burst-{n}"), "burst-user", "starter", "10");
        let ingester = &ingester;
        async move { ingester.send_as(&new_delivery_id(), &body).await.status }
    }));
    // Pause: both workers leave the broker within the promise, and the
    // command returns once none is attached (nothing is being processed).
    let (burst, (paused, asked)) = tokio::join!(burst, async {
        let paused = admin_json(&env, &["pause", "--reason", "duplicate storm"]).await;
        (paused, Instant::now())
    });
    assert!(burst.iter().all(|status| *status == 200), "{burst:?}");
    assert_eq!(paused["changed"], true, "{paused}");
    assert_eq!(paused["workersAttached"], 0, "{paused}");
    let drained_ms = paused["waitedMs"].as_u64().unwrap();
    eprintln!("the workers left the work queue {drained_ms} ms after the switch");
    assert!(
        u128::from(drained_ms) <= PAUSE_TAKES_EFFECT.as_millis(),
        "{paused}"
    );
    eventually(PAUSE_TAKES_EFFECT, async || {
        let gauges = [
            paused_gauge(&workers[0]).await,
            paused_gauge(&workers[1]).await,
        ];
        seen(gauges, gauges == [1.0, 1.0])
    })
    .await;
    let took = asked.elapsed();
    eprintln!("pause took effect on both workers in {took:?}");
    let status = admin_json(&env, &["status"]).await;
    assert_eq!(status["paused"], true, "{status}");
    assert_eq!(status["changedBy"], OPERATOR, "{status}");
    assert_eq!(status["workQueue"]["consumers"], 0, "{status}");
    let processed_before = env
        .count("select count(*) from webhook_deliveries where processed_at is not null")
        .await;
    eprintln!("{processed_before} of {BURST} deliveries processed before the pause");

    // Deliveries keep being recorded, and are not processed.
    let users = ["pause-user-1", "pause-user-2", "pause-user-3"];
    for (n, user) in users.iter().enumerate() {
        let body = payment_succeeded(&format!("pause-{}", n + 1), user, "starter", "10");
        assert_eq!(
            ingester.send_as(&new_delivery_id(), &body).await.status,
            200
        );
    }
    assert_eq!(
        env.count("select count(*) from webhook_deliveries").await,
        BURST + 3
    );
    let watched_until = Instant::now() + HELD_FOR;
    while Instant::now() < watched_until {
        assert_eq!(
            env.count("select count(*) from webhook_deliveries where processed_at is not null")
                .await,
            processed_before,
            "a delivery was processed while paused"
        );
        for worker in &workers {
            assert_eq!(paused_gauge(worker).await, 1.0);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = admin_json(&env, &["status"]).await;
    assert_eq!(
        status["unprocessedDeliveries"],
        BURST + 3 - processed_before,
        "{status}"
    );
    let text = env
        .admin(&["--operator", OPERATOR, "status"])
        .await
        .unwrap();
    assert!(
        text.contains("PAUSED") && text.contains("duplicate storm"),
        "{text}"
    );

    // A second pause changes nothing.
    let again = admin_json(&env, &["pause", "--reason", "again"]).await;
    assert_eq!(again["changed"], false, "{again}");

    // Resume: everything is processed, once.
    let resumed = admin_json(&env, &["resume", "--reason", "storm over"]).await;
    assert_eq!(resumed["changed"], true, "{resumed}");
    env.wait_all_processed(BURST + 3, WAIT).await;
    for user in users {
        assert_eq!(env.balance(user).await, 500, "{user}");
    }
    assert_eq!(env.balance("burst-user").await, BURST * 500);
    assert_eq!(
        env.count("select count(*) from credit_ledger where kind = 'purchase_grant'")
            .await,
        BURST + 3
    );
    for worker in &workers {
        eventually(WAIT, async || {
            let gauge = paused_gauge(worker).await;
            seen(gauge, gauge == 0.0)
        })
        .await;
    }
    assert_eq!(audit_rows(&env, "pause").await, 2);
    assert_eq!(audit_rows(&env, "resume").await, 1);
    assert!(audit_rows(&env, "status").await >= 2);
    let (operator, reason): (Option<String>, Option<String>) =
        sqlx::query_as("select operator, reason from operator_actions where command = 'resume'")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(operator.as_deref(), Some(OPERATOR));
    assert_eq!(reason.as_deref(), Some("storm over"));
}

#[tokio::test]
async fn duplicates_are_listed_and_a_revoke_takes_back_an_unspent_grant_once() {
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let _worker = env.start_worker(&[]).await.unwrap();
    let body = payment_succeeded("dup-order", "dup-user", "pro", "50");
    let (first, second) = (new_delivery_id(), new_delivery_id());
    assert_eq!(ingester.send_as(&first, &body).await.status, 200);
    env.wait_all_processed(1, WAIT).await;
    assert_eq!(ingester.send_as(&second, &body).await.status, 200);
    env.wait_all_processed(2, WAIT).await;
    assert_eq!(env.balance("dup-user").await, 3300);

    let duplicates = admin_json(&env, &["duplicates", "--since", "1h"]).await;
    let orders = duplicates["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 1, "{duplicates}");
    assert_eq!(orders[0]["order"], "dup-order");
    assert_eq!(orders[0]["duplicates"], 1);
    assert_eq!(orders[0]["grants"], 1);
    assert_eq!(orders[0]["deliveries"], serde_json::json!([second]));
    let text = env.admin(&["duplicates"]).await.unwrap();
    assert!(
        text.contains("dup-order") && text.contains(&second),
        "{text}"
    );

    let revoked = admin_json(&env, &["revoke", "dup-order", "--reason", "test duplicate"]).await;
    assert_eq!(revoked["changed"], true, "{revoked}");
    assert_eq!(revoked["revoke"]["taken"], 3300);
    assert_eq!(revoked["revoke"]["shortfall"], 0);
    assert_eq!(env.balance("dup-user").await, 0);

    // A second revoke changes nothing.
    let again = admin_json(&env, &["revoke", "dup-order", "--reason", "again"]).await;
    assert_eq!(again["changed"], false, "{again}");
    assert_eq!(again["revoke"]["ledgerId"], revoked["revoke"]["ledgerId"]);
    assert_eq!(env.balance("dup-user").await, 0);
    assert_eq!(
        env.count("select count(*) from credit_ledger where kind = 'revoke'")
            .await,
        1
    );
    let (revoked_credits, history): (Option<i64>, Value) = sqlx::query_as(
        "select revoked_credits, status_history from payment_orders where provider_order_id = 'dup-order'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(revoked_credits, Some(3300));
    assert!(history.to_string().contains("test duplicate"), "{history}");
    assert_eq!(
        env.count("select count(*) from payment_order_events where event_type = 'credits.revoked'")
            .await,
        1
    );
    assert_eq!(audit_rows(&env, "revoke").await, 2);
    assert_eq!(audit_rows(&env, "duplicates").await, 2);

    // Unknown and never-granted orders are refused with a code.
    let missing = env
        .admin_run(
            &[
                "--json",
                "--operator",
                OPERATOR,
                "revoke",
                "no-such",
                "--reason",
                "x",
            ],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(missing.code, Some(3), "{missing:?}");
    assert_eq!(missing.json()["refused"], "ORDER_NOT_FOUND");
    // A change without an operator is a usage error, before any connection.
    let anonymous = env
        .admin_run(&["revoke", "dup-order", "--reason", "x"], &[])
        .await
        .unwrap();
    assert_eq!(anonymous.code, Some(2), "{anonymous:?}");
}

#[tokio::test]
async fn a_revoke_after_a_partial_spend_records_the_shortfall_and_never_goes_negative() {
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    // pro credits expire (a lot); starter credits never do.
    let worker = env
        .start_worker(&[("CREDIT_VALIDITY_DAYS", "pro=365")])
        .await
        .unwrap();
    for (order, package, amount) in [
        ("short-pro", "pro", "50"),
        ("short-starter", "starter", "10"),
    ] {
        let body = payment_succeeded(order, "short-user", package, amount);
        assert_eq!(
            ingester.send_as(&new_delivery_id(), &body).await.status,
            200
        );
    }
    env.wait_all_processed(2, WAIT).await;
    assert_eq!(env.balance("short-user").await, 3800);
    // Spending takes the expiring lot first: 300 of the pro credits are left.
    let spent = spend(
        &env.pool,
        Spend {
            user_id: "short-user",
            credits: 3000,
            description: Some("a big job"),
            idempotency_key: "spend-1",
            api_key: None,
        },
    )
    .await
    .unwrap();
    assert!(
        matches!(
            spent,
            SpendOutcome::Spent {
                balance_after: 800,
                ..
            }
        ),
        "{spent:?}"
    );

    let revoked = admin_json(&env, &["revoke", "short-pro", "--reason", "chargeback"]).await;
    assert_eq!(revoked["revoke"]["asked"], 3300, "{revoked}");
    assert_eq!(revoked["revoke"]["taken"], 800, "{revoked}");
    assert_eq!(revoked["revoke"]["shortfall"], 2500, "{revoked}");
    assert_eq!(env.balance("short-user").await, 0);
    assert_eq!(
        env.count(
            "select coalesce(sum(remaining), 0)::int8 from credit_lots where user_id = 'short-user'"
        )
        .await,
        0,
        "no lot holds more than the balance"
    );
    assert_eq!(
        env.count(
            "select coalesce(sum(credits), 0)::int8 from credit_ledger where user_id = 'short-user'"
        )
        .await,
        0,
        "the ledger sums to the balance"
    );
    assert_eq!(
        env.count(
            "select revoke_shortfall from payment_orders where provider_order_id = 'short-pro'"
        )
        .await,
        2500
    );
    let page = worker
        .metrics_once("ledgerhook_revoke_shortfall_credits", &[], 2500.0)
        .await;
    assert_eq!(
        ledgerhook_tests::scrape::sum(&page, "ledgerhook_revoke_shortfall_orders", &[]),
        1.0
    );
}

#[tokio::test]
async fn a_revoke_after_the_grant_expired_takes_nothing_from_the_other_purchases() {
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let _worker = env
        .start_worker(&[
            ("CREDIT_VALIDITY_DAYS", "pro=365,vip=365"),
            ("CREDIT_EXPIRY_INTERVAL_SECS", "0"),
        ])
        .await
        .unwrap();
    for (order, package, amount) in [
        ("exp-pro", "pro", "50"),
        ("exp-vip", "vip", "100"),
        ("exp-starter", "starter", "10"),
    ] {
        let body = payment_succeeded(order, "exp-user", package, amount);
        assert_eq!(
            ingester.send_as(&new_delivery_id(), &body).await.status,
            200
        );
    }
    env.wait_all_processed(3, WAIT).await;
    assert_eq!(env.balance("exp-user").await, 3300 + 9600 + 500);
    // The pro grant's time came and the expiry job removed it; then its
    // revoke asks for nothing: expired credits are neither taken again (out
    // of the other purchases) nor counted as spent.
    expire_lot_of(&env, "exp-pro").await;
    let expire = env.admin_run(&["expire-credits"], &[]).await.unwrap();
    assert_eq!(expire.code, Some(0), "{expire:?}");
    assert_eq!(env.balance("exp-user").await, 9600 + 500);
    let pro = admin_json(&env, &["revoke", "exp-pro", "--reason", "chargeback"]).await;
    assert_eq!(revoke_figures(&pro), (0, 0, 0), "{pro}");
    assert_eq!(env.balance("exp-user").await, 9600 + 500);
    // The vip grant's time comes with no job run: the revoke expires it
    // first, and again asks for nothing.
    expire_lot_of(&env, "exp-vip").await;
    let vip = admin_json(&env, &["revoke", "exp-vip", "--reason", "chargeback"]).await;
    assert_eq!(revoke_figures(&vip), (0, 0, 0), "{vip}");
    assert_eq!(
        env.balance("exp-user").await,
        500,
        "the starter credits stay"
    );
    assert_eq!(
        env.count(
            "select coalesce(sum(credits), 0)::int8 from credit_ledger where user_id = 'exp-user'"
        )
        .await,
        500,
        "the ledger sums to the balance"
    );
}

/// Makes the lot of `order`'s grant due.
async fn expire_lot_of(env: &TestEnv, order: &str) {
    let moved = sqlx::query(
        "update credit_lots set expires_at = now() - interval '1 minute'
         where grant_id in (select l.id from credit_ledger l join payment_orders o on o.id = l.order_id
                            where o.provider_order_id = $1 and l.kind = 'purchase_grant')",
    )
    .bind(order)
    .execute(&env.pool)
    .await
    .unwrap();
    assert_eq!(moved.rows_affected(), 1, "{order} has a lot");
}

/// A revoke's (asked, taken, shortfall).
fn revoke_figures(printout: &Value) -> (i64, i64, i64) {
    let revoke = &printout["revoke"];
    let figure = |name: &str| {
        revoke[name]
            .as_i64()
            .unwrap_or_else(|| panic!("{printout}"))
    };
    (figure("asked"), figure("taken"), figure("shortfall"))
}

#[tokio::test]
async fn a_manual_grant_happens_once_per_key_and_the_audit_shows_every_cause() {
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let _worker = env
        .start_worker(&[("CREDIT_VALIDITY_DAYS", "pro=365")])
        .await
        .unwrap();
    let body = payment_succeeded("audit-paid", "audit-user", "starter", "10");
    assert_eq!(
        ingester.send_as(&new_delivery_id(), &body).await.status,
        200
    );
    env.wait_all_processed(1, WAIT).await;
    spend(
        &env.pool,
        Spend {
            user_id: "audit-user",
            credits: 100,
            description: Some("render"),
            idempotency_key: "audit-spend",
            api_key: None,
        },
    )
    .await
    .unwrap();

    let grant = [
        "grant",
        "--user",
        "audit-user",
        "--credits",
        "250",
        "--reason",
        "ticket 42",
        "--idempotency-key",
        "ticket-42",
    ];
    let granted = admin_json(&env, &grant).await;
    assert_eq!(granted["changed"], true, "{granted}");
    assert_eq!(granted["granted"]["balanceAfter"], 650);
    let repeated = admin_json(&env, &grant).await;
    assert_eq!(repeated["changed"], false, "{repeated}");
    assert_eq!(
        repeated["granted"]["ledgerId"],
        granted["granted"]["ledgerId"]
    );
    assert_eq!(env.balance("audit-user").await, 650);
    let reused = env
        .admin_run(
            &[
                "--json",
                "--operator",
                OPERATOR,
                "grant",
                "--user",
                "audit-user",
                "--credits",
                "999",
                "--reason",
                "x",
                "--idempotency-key",
                "ticket-42",
            ],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(reused.code, Some(3), "{reused:?}");
    assert_eq!(reused.json()["refused"], "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(env.balance("audit-user").await, 650);

    // A grant for an order that has not granted: it completes the order,
    // so the payment arriving later is a duplicate, not a second grant.
    env.create_order("audit-late", "audit-user", "starter")
        .await;
    let for_order = admin_json(
        &env,
        &[
            "grant",
            "--user",
            "audit-user",
            "--credits",
            "500",
            "--reason",
            "paid, webhook lost",
            "--idempotency-key",
            "ticket-43",
            "--order",
            "audit-late",
        ],
    )
    .await;
    assert_eq!(for_order["changed"], true, "{for_order}");
    let late = payment_succeeded("audit-late", "audit-user", "starter", "10");
    assert_eq!(
        ingester.send_as(&new_delivery_id(), &late).await.status,
        200
    );
    env.wait_all_processed(2, WAIT).await;
    assert_eq!(env.balance("audit-user").await, 1150);
    let already = env
        .admin_run(
            &[
                "--operator",
                OPERATOR,
                "grant",
                "--user",
                "audit-user",
                "--credits",
                "10",
                "--reason",
                "x",
                "--idempotency-key",
                "ticket-44",
                "--order",
                "audit-paid",
            ],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(already.code, Some(3), "{already:?}");
    assert!(
        already.stdout.contains("ORDER_ALREADY_GRANTED"),
        "{already:?}"
    );

    // A pro purchase whose year passes unspent.
    let pro = payment_succeeded("audit-pro", "audit-user", "pro", "50");
    assert_eq!(ingester.send_as(&new_delivery_id(), &pro).await.status, 200);
    env.wait_all_processed(3, WAIT).await;
    sqlx::query("update credit_lots set expires_at = now() - interval '1 minute'")
        .execute(&env.pool)
        .await
        .unwrap();
    let expired = env.admin(&["expire-credits"]).await.unwrap();
    assert!(expired.contains("expired 3300 credits"), "{expired}");

    admin_json(
        &env,
        &["revoke", "audit-paid", "--reason", "goodwill reversed"],
    )
    .await;
    let audit = admin_json(&env, &["audit", "audit-user"]).await;
    assert_eq!(audit["balance"], env.balance("audit-user").await, "{audit}");
    assert_eq!(audit["ledgerSum"], audit["balance"], "{audit}");
    let kinds: Vec<&str> = audit["movements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "purchase_grant",
            "spend",
            "manual_grant",
            "manual_grant",
            "purchase_grant",
            "expiry",
            "revoke"
        ],
        "{audit}"
    );
    let causes: Vec<&str> = audit["movements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["cause"].as_str().unwrap())
        .collect();
    assert!(
        causes[0].contains("audit-paid") && causes[0].contains("msg_"),
        "{causes:?}"
    );
    assert!(causes[1].contains("render"), "{causes:?}");
    assert!(causes[2].contains("ticket 42"), "{causes:?}");
    assert!(causes[3].contains("audit-late"), "{causes:?}");
    assert!(causes[4].contains("audit-pro"), "{causes:?}");
    assert!(causes[5].contains("expired"), "{causes:?}");
    assert!(causes[6].contains("goodwill reversed"), "{causes:?}");
    assert_eq!(audit["balance"], 650, "{audit}");
    let text = env.admin(&["audit", "audit-user"]).await.unwrap();
    assert!(
        text.contains("manual_grant") && text.contains("audit-late"),
        "{text}"
    );
    assert_eq!(audit_rows(&env, "grant").await, 5);
    assert_eq!(audit_rows(&env, "audit").await, 2);
}

#[tokio::test]
async fn every_help_runs_without_touching_the_database_or_the_broker() {
    // Nothing listens on port 1: a command that connected would fail.
    let env: Vec<(String, String)> = [
        ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nowhere"),
        ("AMQP_URL", "amqp://guest:guest@127.0.0.1:1/%2f"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .into();
    let top = run_admin(env.clone(), &["--help"]).await.unwrap();
    assert_eq!(top.code, Some(0), "{top:?}");
    for command in [
        "parked",
        "show",
        "redrive",
        "replay",
        "expire-credits",
        "pause",
        "resume",
        "status",
        "duplicates",
        "revoke",
        "grant",
        "audit",
        "reconcile",
        "notifications",
        "retention",
        "erase-user",
        "migrate",
        "completions",
        "man",
    ] {
        assert!(
            top.stdout.contains(command),
            "{command} missing: {}",
            top.stdout
        );
        let help = run_admin(env.clone(), &[command, "--help"]).await.unwrap();
        assert_eq!(help.code, Some(0), "{command}: {help:?}");
        assert!(
            help.stdout.contains("Usage: ledgerhook-admin"),
            "{command}: {help:?}"
        );
    }
    // The same environment does fail a command that needs the database.
    let status = run_admin(env, &["--json", "status"]).await.unwrap();
    assert_eq!(status.code, Some(1), "{status:?}");
    assert!(
        status.json()["error"]
            .as_str()
            .unwrap()
            .contains("PostgreSQL"),
        "{status:?}"
    );
}

#[tokio::test]
async fn a_held_order_is_released_once_or_rejected_by_command_not_by_sql() {
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let _worker = env.start_worker(&[]).await.unwrap();
    // Two orders paid with the wrong amount: each held, nothing granted.
    env.create_order("held-release", "held-user-1", "pro").await;
    env.create_order("held-reject", "held-user-2", "pro").await;
    for (order, user) in [
        ("held-release", "held-user-1"),
        ("held-reject", "held-user-2"),
    ] {
        let short = payment_succeeded(order, user, "pro", "10");
        assert_eq!(ingester.send(&short).await.status, 200);
    }
    env.wait_all_processed(2, WAIT).await;

    let held = admin_json(&env, &["held"]).await;
    let listed: Vec<&str> = held["held"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["providerOrderId"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 2, "{held}");
    assert!(listed.contains(&"held-release") && listed.contains(&"held-reject"));
    assert!(
        held["held"][0]["reviewReason"]
            .as_str()
            .unwrap()
            .contains("the package costs"),
        "{held}"
    );
    let text = env.admin(&["held"]).await.unwrap();
    assert!(text.starts_with("2 orders held for review"), "{text}");

    // Release: the order's 3,300 credits, once.
    let release = ["release", "held-release", "--reason", "rest paid by wire"];
    let released = admin_json(&env, &release).await;
    assert_eq!(released["resolution"]["result"], "granted", "{released}");
    assert_eq!(released["resolution"]["credits"], 3300);
    assert_eq!(env.balance("held-user-1").await, 3300);
    let mut again = vec!["--json", "--operator", OPERATOR];
    again.extend_from_slice(&release);
    let again = env.admin_run(&again, &[]).await.unwrap();
    assert_eq!(again.code, Some(3), "{again:?}");
    assert_eq!(again.json()["refused"], "ORDER_NOT_HELD");
    assert_eq!(env.balance("held-user-1").await, 3300);

    // Reject: nothing granted, the unpaid order closed as failed.
    let rejected = admin_json(&env, &["reject", "held-reject", "--reason", "card testing"]).await;
    assert_eq!(rejected["resolution"]["result"], "rejected", "{rejected}");
    assert_eq!(rejected["resolution"]["status"], "failed");
    assert_eq!(env.balance("held-user-2").await, 0);
    let (status, reason, history): (String, Option<String>, String) = sqlx::query_as(
        "select status, review_reason, status_history::text from payment_orders
         where provider_order_id = 'held-reject'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!((status.as_str(), reason), ("failed", None));
    assert!(
        history.contains("rejected from review by alice@ops: card testing"),
        "{history}"
    );
    assert_eq!(
        admin_json(&env, &["held"]).await["held"],
        serde_json::json!([])
    );

    // The right payment arriving after the release is a duplicate, not a
    // second grant.
    let full = payment_succeeded("held-release", "held-user-1", "pro", "50");
    assert_eq!(ingester.send(&full).await.status, 200);
    env.wait_all_processed(3, WAIT).await;
    assert_eq!(env.balance("held-user-1").await, 3300);
    assert_eq!(
        audit_rows(&env, "release").await,
        2,
        "the refusal is audited too"
    );
    assert_eq!(audit_rows(&env, "reject").await, 1);
    // Changing something needs an operator.
    let anonymous = env
        .admin_run(
            &["reject", "held-release", "--reason", "x"],
            &[("LEDGERHOOK_OPERATOR", "")],
        )
        .await
        .unwrap();
    assert_ne!(anonymous.code, Some(0), "{anonymous:?}");
}

#[tokio::test]
async fn pausing_one_provider_holds_its_deliveries_while_the_other_is_granted() {
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let worker = env
        .start_worker(&[("WORKER_DEFER_MS", "300")])
        .await
        .unwrap();
    let paused = admin_json(
        &env,
        &[
            "pause",
            "--provider",
            "stripe",
            "--reason",
            "stripe incident",
        ],
    )
    .await;
    assert_eq!(paused["changed"], true, "{paused}");
    // The workers read the switch every 500 ms.
    tokio::time::sleep(Duration::from_millis(1200)).await;

    env.create_provider_order(
        PaymentProvider::Stripe,
        "cs_paused",
        "paused-stripe-user",
        "starter",
    )
    .await;
    env.create_order("cm-running", "running-crossmint-user", "starter")
        .await;
    let stripe_event = checkout_completed(
        &new_event_id(),
        "cs_paused",
        "pi_paused",
        "paused-stripe-user",
        "starter",
        1000,
    );
    assert_eq!(ingester.send_stripe(&stripe_event).await.status, 200);
    let crossmint = payment_succeeded("cm-running", "running-crossmint-user", "starter", "10");
    assert_eq!(ingester.send(&crossmint).await.status, 200);
    eventually(WAIT, async || {
        let balance = env.balance("running-crossmint-user").await;
        seen(balance, balance > 0)
    })
    .await;
    // Stripe's waits, unprocessed, coming round every 300 ms.
    worker
        .metrics_once(
            "ledgerhook_worker_deferred_total",
            &["provider=\"stripe\""],
            3.0,
        )
        .await;
    assert_eq!(env.balance("paused-stripe-user").await, 0);
    assert_eq!(
        env.count("select count(*) from webhook_deliveries where provider = 'stripe' and processed_at is null")
            .await,
        1
    );
    let status = env
        .admin(&["--operator", OPERATOR, "status"])
        .await
        .unwrap();
    assert!(
        status.contains("paused providers:        stripe"),
        "{status}"
    );
    assert!(
        status.contains("processing:              running"),
        "{status}"
    );

    let resumed = admin_json(
        &env,
        &["resume", "--provider", "stripe", "--reason", "fixed"],
    )
    .await;
    assert_eq!(resumed["changed"], true, "{resumed}");
    eventually(WAIT, async || {
        let balance = env.balance("paused-stripe-user").await;
        seen(balance, balance > 0)
    })
    .await;
    assert_eq!(
        env.count(
            "select count(*) from operator_actions where arguments ->> 'provider' = 'stripe'"
        )
        .await,
        2
    );
}
