//! Retention and the deliveries' monthly partitions (issue 23): old
//! processed deliveries and sent notifications lose their bodies and
//! personal fields, keeping hash, ids and lineage; nothing unprocessed,
//! parked or recent is touched; the walk goes in bounded batches; a month
//! without a partition lands in the default one and is moved out; a month
//! wholly scrubbed is dropped, its keys kept, so a sender's id stays a
//! duplicate across months and after the drop.

use std::time::Duration;

use chrono::{DateTime, TimeZone as _, Utc};
use ledgerhook_store::deliveries::record::{NewDelivery, record_batch};
use ledgerhook_tests::harness::{TestEnv, eventually, seen};
use ledgerhook_tests::webhook::{new_delivery_id, payment_succeeded};
use serde_json::Value;
use sqlx::PgPool;

const WAIT: Duration = Duration::from_secs(60);
const OPERATOR: &str = "retention-test";

/// A payment body with the buyer's address in it, as Crossmint's carries.
fn paid_with_email(order: &str, user: &str) -> Value {
    let mut body = payment_succeeded(order, user, "starter", "10");
    body["data"]["payment"]["receiptEmail"] = Value::String(format!("{user}@example.com"));
    body
}

/// Records a delivery as the ingester would have, received at `at`.
async fn record_at(
    pool: &PgPool,
    delivery_id: &str,
    body: &Value,
    at: DateTime<Utc>,
) -> Option<i64> {
    let bytes = serde_json::to_vec(body).unwrap();
    let recorded = record_batch(
        pool,
        "crossmint",
        &[NewDelivery {
            delivery_id,
            body: &bytes,
            headers: r#"[["user-agent","Svix-Webhooks/1.0"],["x-forwarded-for","203.0.113.7"]]"#
                .into(),
            signed_at: at,
            received_at: at,
            verified_by: "test",
        }],
    )
    .await
    .unwrap();
    recorded[0]
}

async fn partition_of(pool: &PgPool, delivery_id: &str) -> Option<String> {
    sqlx::query_scalar(
        "select tableoid::regclass::text from webhook_deliveries where delivery_id = $1",
    )
    .bind(delivery_id)
    .fetch_optional(pool)
    .await
    .unwrap()
}

async fn body_of(pool: &PgPool, delivery_id: &str) -> Vec<u8> {
    sqlx::query_scalar("select body from webhook_deliveries where delivery_id = $1")
        .bind(delivery_id)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn admin_json(env: &TestEnv, args: &[&str], extra: &[(&str, &str)]) -> Value {
    let mut all = vec!["--json", "--operator", OPERATOR];
    all.extend_from_slice(args);
    let run = env.admin_run(&all, extra).await.unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    run.json()
}

/// The ledger's sum and the balance of `user`.
async fn ledger_and_balance(pool: &PgPool, user: &str) -> (i64, i64) {
    sqlx::query_as(
        "select (select coalesce(sum(credits), 0)::int8 from credit_ledger where user_id = $1),
                (select coalesce(max(balance), 0) from user_credits where user_id = $1)",
    )
    .bind(user)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn retention_scrubs_old_processed_deliveries_and_notifications_keeps_the_rest_and_drops_a_scrubbed_month()
 {
    let env = TestEnv::new().await.unwrap();
    let now = Utc::now();
    // Month A (130 days ago) ends before the 90-day horizon whatever the
    // date; month B (200 days ago) is another month, also wholly before it.
    let month_a = now - chrono::Duration::days(130);
    let month_b = now - chrono::Duration::days(200);

    // Recorded long ago; neither month has a partition (only this month
    // and the next two were made): they land in the default partition.
    let old_paid: Vec<String> = (1..=3).map(|n| format!("msg_old_a{n}")).collect();
    for (n, id) in old_paid.iter().enumerate() {
        let body = paid_with_email(&format!("ret-a{n}"), "ret-user");
        assert!(record_at(&env.pool, id, &body, month_a).await.is_some());
    }
    let b_paid = "msg_old_b_paid";
    let b_unprocessed = "msg_old_b_unprocessed";
    let b_parked = "msg_old_b_parked";
    record_at(
        &env.pool,
        b_paid,
        &paid_with_email("ret-b1", "ret-user"),
        month_b,
    )
    .await;
    record_at(
        &env.pool,
        b_unprocessed,
        &paid_with_email("ret-b2", "ret-user"),
        month_b,
    )
    .await;
    record_at(
        &env.pool,
        b_parked,
        &paid_with_email("ret-b3", "ret-user"),
        month_b,
    )
    .await;
    for id in old_paid
        .iter()
        .map(String::as_str)
        .chain([b_paid, b_unprocessed])
    {
        assert_eq!(
            partition_of(&env.pool, id).await.as_deref(),
            Some("webhook_deliveries_default"),
            "{id}: a month without a partition is caught by the default one"
        );
    }

    // The old payments go through the real pipeline (a replay of recorded
    // deliveries), so grants and notifications point at the old rows.
    let ingester = env.start_ingester(&[]).await.unwrap();
    let _worker = env
        .start_worker(&[("NOTIFY_CHANNELS", "email")])
        .await
        .unwrap();
    let mut replayed = vec!["replay"];
    replayed.extend(old_paid.iter().map(String::as_str));
    replayed.push(b_paid);
    let replay = admin_json(&env, &replayed, &[]).await;
    eprintln!("{replay}");
    env.wait_for_count(
        "select count(*) from webhook_deliveries where outcome = 'granted'",
        4,
        WAIT,
    )
    .await;
    // The parked one, as the worker notes one it gave up on.
    sqlx::query(
        "update webhook_deliveries set processed_at = now(), outcome = 'parked',
             outcome_detail = 'order unknown' where delivery_id = $1",
    )
    .bind(b_parked)
    .execute(&env.pool)
    .await
    .unwrap();
    // A recent payment, processed.
    let recent = new_delivery_id();
    assert_eq!(
        ingester
            .send_as(&recent, &paid_with_email("ret-new", "ret-user"))
            .await
            .status,
        200
    );
    env.wait_for_count(
        "select count(*) from webhook_deliveries where outcome = 'granted'",
        5,
        WAIT,
    )
    .await;
    // Their emails, sent by the notifier: the old grants' long ago.
    sqlx::query(
        "update notifications n set sent_at = case when o.provider_order_id = 'ret-new'
                                                   then now() else now() - interval '120 days' end
         from payment_orders o where o.id = n.order_id",
    )
    .execute(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        env.count("select count(*) from notifications where recipient is not null")
            .await,
        5
    );
    let hashes_before: Vec<(String, Vec<u8>)> = sqlx::query_as(
        "select delivery_id, sha256(body) from webhook_deliveries order by delivery_id",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    let lineage_before = env
        .count(
            "select count(*) from credit_ledger l join webhook_deliveries d on d.id = l.delivery_id",
        )
        .await;
    assert_eq!(lineage_before, 5);
    let ledger_before = ledger_and_balance(&env.pool, "ret-user").await;

    // A dry run counts and changes nothing.
    let dry = admin_json(&env, &["retention", "run", "--dry-run"], &[]).await;
    assert_eq!(dry["report"]["deliveriesScrubbed"], 4, "{dry}");
    assert_eq!(dry["report"]["notificationsScrubbed"], 4, "{dry}");
    assert_eq!(
        dry["report"]["partitionsCreated"],
        Value::Array(vec![]),
        "{dry}"
    );
    assert_eq!(
        env.count("select count(*) from webhook_deliveries where scrubbed_at is not null")
            .await,
        0
    );

    // The run, two rows a statement.
    let run = admin_json(
        &env,
        &["retention", "run"],
        &[("RETENTION_BATCH_ROWS", "2")],
    )
    .await;
    let report = &run["report"];
    eprintln!("{run}");
    assert_eq!(report["deliveriesScrubbed"], 4, "{run}");
    assert_eq!(
        report["deliveriesWalked"], 6,
        "only rows up to the horizon's month: {run}"
    );
    assert_eq!(
        report["batches"], 4,
        "6 rows, 2 a batch, then an empty one: {run}"
    );
    assert_eq!(report["notificationsScrubbed"], 4, "{run}");
    let created: Vec<String> = serde_json::from_value(report["partitionsCreated"].clone()).unwrap();
    let name_a = month_a.format("%Y-%m").to_string();
    let name_b = month_b.format("%Y-%m").to_string();
    assert!(
        created.contains(&name_a) && created.contains(&name_b),
        "the default partition's months got partitions: {run}"
    );
    assert_eq!(
        env.count("select count(*) from webhook_deliveries_default")
            .await,
        0,
        "moved out of the default partition"
    );
    // Month A was all scrubbed: dropped. Month B holds an unprocessed and a
    // parked delivery: kept.
    let dropped: Vec<String> = serde_json::from_value(report["partitionsDropped"].clone()).unwrap();
    let part_a = format!("webhook_deliveries_y{}", month_a.format("%Ym%m"));
    let part_b = format!("webhook_deliveries_y{}", month_b.format("%Ym%m"));
    assert!(dropped.contains(&part_a), "{run}");
    assert!(!dropped.contains(&part_b), "{run}");
    assert_eq!(partition_of(&env.pool, &old_paid[0]).await, None);
    assert_eq!(partition_of(&env.pool, b_paid).await, Some(part_b.clone()));

    // Scrubbed: body and headers gone, the hash and outcome kept with the key.
    assert!(body_of(&env.pool, b_paid).await.is_empty());
    let headers: Value =
        sqlx::query_scalar("select headers from webhook_deliveries where delivery_id = $1")
            .bind(b_paid)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(headers, Value::Array(vec![]));
    for id in old_paid.iter().map(String::as_str).chain([b_paid]) {
        let (hash, outcome): (Option<Vec<u8>>, Option<String>) =
            sqlx::query_as("select body_sha256, outcome from delivery_keys where delivery_id = $1")
                .bind(id)
                .fetch_one(&env.pool)
                .await
                .unwrap();
        let expected = &hashes_before.iter().find(|(d, _)| d == id).unwrap().1;
        assert_eq!(
            hash.as_ref(),
            Some(expected),
            "{id}: the body's hash is kept"
        );
        assert_eq!(outcome.as_deref(), Some("granted"));
    }
    // Untouched: unprocessed, parked and recent deliveries.
    for id in [b_unprocessed, b_parked, recent.as_str()] {
        let body = body_of(&env.pool, id).await;
        assert!(
            String::from_utf8_lossy(&body).contains("@example.com"),
            "{id} kept its body"
        );
    }
    // Notifications: the old ones lost their address, the recent one not.
    assert_eq!(
        env.count(
            "select count(*) from notifications
             where recipient is null and scrubbed_at is not null and not facts ? 'userId'"
        )
        .await,
        4
    );
    assert_eq!(
        env.count("select count(*) from notifications where recipient is not null")
            .await,
        1
    );
    // Lineage: every ledger entry still names its delivery row; month A's
    // rows are gone with their month, their keys are not.
    assert_eq!(
        env.count("select count(*) from credit_ledger where delivery_id is not null")
            .await,
        5
    );
    assert_eq!(
        env.count(
            "select count(*) from credit_ledger l
             join delivery_keys k on k.delivery_row = l.delivery_id"
        )
        .await,
        5
    );
    assert_eq!(
        ledger_and_balance(&env.pool, "ret-user").await,
        ledger_before
    );
    let shown = admin_json(&env, &["show", &old_paid[0]], &[]).await;
    assert_eq!(shown["dropped"], true, "{shown}");
    assert_eq!(shown["outcome"], "granted", "{shown}");

    // A sender's retry of a delivery from either month is still a duplicate.
    for id in [old_paid[1].as_str(), b_unprocessed] {
        let answer = ingester
            .send_as(id, &paid_with_email("ret-a1", "ret-user"))
            .await;
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.body["status"], "duplicate", "{id}: {answer:?}");
    }

    // A second run finds nothing more to do.
    let again = admin_json(&env, &["retention", "run"], &[]).await;
    assert_eq!(again["report"]["deliveriesScrubbed"], 0, "{again}");
    assert_eq!(again["report"]["notificationsScrubbed"], 0, "{again}");
    assert_eq!(
        env.count("select count(*) from operator_actions where command = 'retention'")
            .await,
        3
    );
}

#[tokio::test]
async fn deliveries_either_side_of_a_month_end_land_in_their_months_and_stay_one_key() {
    let env = TestEnv::new().await.unwrap();
    // Next month's partition exists from the migration.
    let this_month = ledgerhook_store::deliveries::partitions::month_start(Utc::now());
    let next = this_month + chrono::Months::new(1);
    let last_second =
        Utc.from_utc_datetime(&next.and_hms_opt(0, 0, 0).unwrap()) - chrono::Duration::seconds(1);
    let first_second = last_second + chrono::Duration::seconds(1);
    let body = payment_succeeded("edge-order", "edge-user", "starter", "10");

    let before = record_at(&env.pool, "msg_edge", &body, last_second).await;
    // The sender's retry after midnight: the same key, nothing recorded.
    let retry = record_at(&env.pool, "msg_edge", &body, first_second).await;
    let after = record_at(&env.pool, "msg_edge_next", &body, first_second).await;

    assert!(before.is_some() && after.is_some());
    assert_eq!(retry, None, "a retry across the month end is a duplicate");
    assert_eq!(
        partition_of(&env.pool, "msg_edge").await,
        Some(format!(
            "webhook_deliveries_y{}",
            this_month.format("%Ym%m")
        ))
    );
    assert_eq!(
        partition_of(&env.pool, "msg_edge_next").await,
        Some(format!("webhook_deliveries_y{}", next.format("%Ym%m")))
    );
    assert_eq!(
        ledgerhook_store::deliveries::partitions::month_of_row(before.unwrap()),
        Some(this_month)
    );
    assert_eq!(env.count("select count(*) from delivery_keys").await, 2);
    assert_eq!(env.count("select count(*) from delivery_outbox").await, 2);
}

#[tokio::test]
async fn the_workers_job_scrubs_on_its_schedule_and_counts_what_it_did() {
    let env = TestEnv::new().await.unwrap();
    let long_ago = Utc::now() - chrono::Duration::days(100);
    record_at(
        &env.pool,
        "msg_job_old",
        &paid_with_email("job-1", "job-user"),
        long_ago,
    )
    .await;
    sqlx::query(
        "update webhook_deliveries set processed_at = received_at, outcome = 'ignored'
         where delivery_id = 'msg_job_old'",
    )
    .execute(&env.pool)
    .await
    .unwrap();

    let worker = env
        .start_worker(&[("RETENTION_INTERVAL_SECS", "1")])
        .await
        .unwrap();
    eventually(WAIT, async || {
        let scrubbed = worker
            .metric(
                "ledgerhook_retention_scrubbed_total",
                &["table=\"webhook_deliveries\""],
            )
            .await;
        seen(scrubbed, scrubbed >= 1.0)
    })
    .await;
    // Scrubbed (and its month perhaps dropped already, depending on the
    // date): the key keeps the body's hash and the outcome.
    assert_eq!(
        env.count(
            "select count(*) from delivery_keys
             where delivery_id = 'msg_job_old' and body_sha256 is not null and outcome = 'ignored'"
        )
        .await,
        1
    );
    assert_eq!(
        env.count(
            "select count(*) from webhook_deliveries
             where delivery_id = 'msg_job_old' and octet_length(body) > 0"
        )
        .await,
        0
    );
    assert!(
        worker
            .metric("ledgerhook_retention_runs_total", &["result=\"done\""])
            .await
            >= 1.0
    );
    assert!(
        worker
            .metric(
                "ledgerhook_retention_partitions_total",
                &["action=\"created\""]
            )
            .await
            >= 1.0,
        "the old month's partition was made"
    );
}

#[tokio::test]
async fn retention_days_of_zero_or_absurd_are_refused_naming_the_variable() {
    let env = TestEnv::new().await.unwrap();
    for days in ["0", "100000"] {
        let run = env
            .admin_run(
                &["--json", "--operator", OPERATOR, "retention", "run"],
                &[("RETENTION_DAYS", days)],
            )
            .await
            .unwrap();
        assert_eq!(run.code, Some(1), "{run:?}");
        assert!(run.stderr.contains("RETENTION_DAYS"), "{run:?}");
    }
    assert_eq!(
        env.count("select count(*) from operator_actions where command = 'retention'")
            .await,
        0
    );
}
