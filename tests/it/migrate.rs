//! Migrations as a deploy step of their own: `ledgerhook-admin migrate`
//! brings a database (created if missing) up to the build's schema and
//! records what it applied; a service started with `RUN_MIGRATIONS=false`
//! migrates nothing, refuses a schema that is behind (naming the command
//! that fixes it), and runs on a migrated one.

use ledgerhook_tests::harness::TestEnv;
use sqlx::PgPool;

/// The migrations in `migrations/` (every one is embedded in the binaries).
const MIGRATIONS: usize = 15;

/// A database beside the test's own that nothing has created or migrated
/// yet; dropped again by [`Fresh::drop_it`] (or, named under the test
/// stem, by the leftovers sweep if a failed test left it).
struct Fresh {
    name: String,
    url: String,
}

impl Fresh {
    fn beside(env: &TestEnv) -> Self {
        let (base, query) = env
            .database_url
            .split_once('?')
            .map_or((env.database_url.as_str(), None), |(b, q)| (b, Some(q)));
        let name = format!("{}_fresh", base.rsplit('/').next().unwrap());
        let server = &base[..base.rfind('/').unwrap()];
        let url = match query {
            Some(query) => format!("{server}/{name}?{query}"),
            None => format!("{server}/{name}"),
        };
        Self { name, url }
    }

    async fn create(&self, env: &TestEnv) {
        sqlx::query(&format!("create database \"{}\"", self.name))
            .execute(&env.pool)
            .await
            .unwrap();
    }

    async fn pool(&self) -> PgPool {
        PgPool::connect(&self.url).await.unwrap()
    }

    async fn drop_it(self, env: &TestEnv) {
        sqlx::query(&format!(
            "drop database if exists \"{}\" with (force)",
            self.name
        ))
        .execute(&env.pool)
        .await
        .unwrap();
    }
}

async fn has_migrations_table(pool: &PgPool) -> bool {
    sqlx::query_scalar::<_, Option<String>>("select to_regclass('_sqlx_migrations')::text")
        .fetch_one(pool)
        .await
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn migrate_creates_and_migrates_a_fresh_database_and_a_second_run_applies_nothing() {
    // Arrange: a database that does not exist yet.
    let env = TestEnv::new().await.unwrap();
    let fresh = Fresh::beside(&env);
    let on_fresh = [("DATABASE_URL", fresh.url.as_str())];

    // Act
    let first = env
        .admin_run(&["--json", "--operator", "deployer", "migrate"], &on_fresh)
        .await
        .unwrap();
    let second = env
        .admin_run(&["--json", "migrate"], &on_fresh)
        .await
        .unwrap();

    // Assert
    assert_eq!(first.code, Some(0), "{first:?}");
    let applied = first.json()["applied"].as_array().unwrap().clone();
    assert_eq!(applied.len(), MIGRATIONS, "{first:?}");
    assert_eq!(applied[0]["version"], 20_261_122_000_001_i64);
    assert_eq!(applied[0]["description"], "webhook deliveries");
    assert_eq!(second.code, Some(0), "{second:?}");
    assert_eq!(
        second.json()["applied"],
        serde_json::json!([]),
        "{second:?}"
    );
    let pool = fresh.pool().await;
    let audit: Vec<(Option<String>, i64)> = sqlx::query_as(
        "select operator, jsonb_array_length(result -> 'applied')::bigint
         from operator_actions where command = 'migrate' order by id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        audit,
        vec![(Some("deployer".to_owned()), MIGRATIONS as i64), (None, 0)]
    );
    pool.close().await;
    fresh.drop_it(&env).await;
}

#[tokio::test]
async fn a_service_without_run_migrations_refuses_a_schema_behind_and_runs_on_a_migrated_one() {
    // Arrange: an empty database.
    let env = TestEnv::new().await.unwrap();
    let fresh = Fresh::beside(&env);
    fresh.create(&env).await;
    let pool = fresh.pool().await;

    // Act / Assert: behind, it stops, names the command, and migrates nothing.
    let refused = env
        .start_worker(&[
            ("DATABASE_URL", fresh.url.as_str()),
            ("RUN_MIGRATIONS", "false"),
        ])
        .await
        .err()
        .expect("a worker on an un-migrated database with RUN_MIGRATIONS=false must not start");
    let refused = format!("{refused:#}");
    assert!(refused.contains("ledgerhook-admin migrate"), "{refused}");
    assert!(refused.contains("RUN_MIGRATIONS=false"), "{refused}");
    assert!(!has_migrations_table(&pool).await);

    // A value that is neither true nor false is a configuration error.
    let misconfigured = env
        .start_worker(&[
            ("DATABASE_URL", fresh.url.as_str()),
            ("RUN_MIGRATIONS", "no"),
        ])
        .await
        .err()
        .expect("RUN_MIGRATIONS=no must be refused");
    assert!(
        format!("{misconfigured:#}").contains("RUN_MIGRATIONS=\"no\""),
        "{misconfigured:#}"
    );

    // Once migrated as its own step, the same service starts.
    let migrated = env
        .admin_run(&["migrate"], &[("DATABASE_URL", fresh.url.as_str())])
        .await
        .unwrap();
    assert_eq!(migrated.code, Some(0), "{migrated:?}");
    let worker = env
        .start_worker(&[
            ("DATABASE_URL", fresh.url.as_str()),
            ("RUN_MIGRATIONS", "false"),
        ])
        .await
        .unwrap();
    let ingester = env
        .start_ingester(&[
            ("DATABASE_URL", fresh.url.as_str()),
            ("RUN_MIGRATIONS", "0"),
        ])
        .await
        .unwrap();
    drop((worker, ingester));
    pool.close().await;
    fresh.drop_it(&env).await;
}

#[tokio::test]
async fn the_hot_path_migration_keeps_old_deliveries_readable_duplicate_and_scrubbable_and_drops_the_bounds_checks()
 {
    // Arrange: a database at the schema before migration 20261207000007
    // (headers as jsonb, the key under the default collation), holding one
    // delivery recorded the way that release recorded it.
    use ledgerhook_store::deliveries::{browse, record, scrub};
    use sqlx::migrate::Migrate as _;
    const BEFORE: i64 = 20_261_207_000_007;
    let env = TestEnv::new().await.unwrap();
    let fresh = Fresh::beside(&env);
    fresh.create(&env).await;
    let pool = fresh.pool().await;
    let mut conn = pool.acquire().await.unwrap();
    conn.ensure_migrations_table().await.unwrap();
    for migration in ledgerhook_store::db::MIGRATOR
        .iter()
        .filter(|m| m.version < BEFORE)
    {
        conn.apply(migration).await.unwrap();
    }
    let old_headers = serde_json::json!([["svix-id", "msg_before"], ["user-agent", "Svix"]]);
    let old_row: i64 = sqlx::query_scalar(
        "with keyed as (
             insert into delivery_keys (provider, delivery_id, delivery_row, received_at)
             values ('crossmint', 'msg_before',
                     delivery_row_base(now()) + nextval('webhook_delivery_rows'), now())
             returning delivery_row)
         insert into webhook_deliveries
             (id, provider, delivery_id, body, headers, signed_at, received_at, verified_by)
         select delivery_row, 'crossmint', 'msg_before', '{}'::bytea, $1, now(), now(), 'test'
         from keyed returning id",
    )
    .bind(&old_headers)
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    drop(conn);

    // Act: the rest of the migrations, then a retry of the old delivery
    // and a new one whose headers are spaced as no parser would keep them.
    ledgerhook_store::db::MIGRATOR.run(&pool).await.unwrap();
    let now = chrono::Utc::now();
    let sent_headers = r#"[ ["svix-id", "msg_after"],["b","2"] ]"#;
    let delivery = |delivery_id| record::NewDelivery {
        delivery_id,
        body: b"{}",
        headers: sent_headers.to_owned(),
        signed_at: now,
        received_at: now,
        verified_by: "test",
    };
    let recorded = record::record_batch(
        &pool,
        "crossmint",
        &[delivery("msg_before"), delivery("msg_after")],
    )
    .await
    .unwrap();

    // Assert: no partition keeps the bounds check its attach needed (it
    // would cost every write), nor does a month made now.
    let made: bool = sqlx::query_scalar("select ensure_delivery_month('2040-01-01')")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(made);
    let checks: Vec<String> = sqlx::query_scalar(
        "select c.conname::text from pg_constraint c join pg_inherits i on i.inhrelid = c.conrelid
         where i.inhparent = 'webhook_deliveries'::regclass and c.contype = 'c'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(checks, Vec::<String>::new());
    // The old id is still a duplicate; both rows read whole.
    assert_eq!(recorded[0], None, "a retry of a delivery from before");
    let new_row = recorded[1].expect("a new delivery is recorded");
    let old = browse::whole(&pool, old_row).await.unwrap().unwrap();
    assert_eq!(old.headers, old_headers);
    let new = browse::whole(&pool, new_row).await.unwrap().unwrap();
    assert_eq!(
        new.headers,
        serde_json::json!([["svix-id", "msg_after"], ["b", "2"]])
    );
    let stored: String =
        sqlx::query_scalar("select headers::text from webhook_deliveries where id = $1")
            .bind(new_row)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        stored, sent_headers,
        "json keeps the text as the ingester wrote it"
    );
    // Scrubbing empties the old row's headers too.
    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(
        scrub::rows(&mut conn, &[old_row, new_row]).await.unwrap(),
        2
    );
    drop(conn);
    let left: Vec<(Option<String>, Option<String>)> = sqlx::query_as(
        "select headers::text, headers_jsonb::text from webhook_deliveries order by id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        left,
        vec![(Some("[]".to_owned()), None), (Some("[]".to_owned()), None)]
    );
    pool.close().await;
    fresh.drop_it(&env).await;
}
