//! Balance, spending and expiry: credits granted through the real webhook
//! path, then spent and expired through the API and the expiry job.

use std::time::Duration;

use ledgerhook_tests::api_client::Api;
use ledgerhook_tests::fake_crossmint::FakeCrossmint;
use ledgerhook_tests::harness::{Ingester, Service, TestEnv};
use ledgerhook_tests::webhook::payment_succeeded;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

struct World {
    env: TestEnv,
    _crossmint: FakeCrossmint,
    api: Api,
    ingester: Ingester,
    _worker: Service,
}

async fn world(validity: &str) -> World {
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let terms = [("CREDIT_VALIDITY_DAYS", validity)];
    let api = env.start_api(&crossmint.api_url, &terms).await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    // The scheduled job is off here; tests run it on demand.
    let worker = env
        .start_worker(&[terms[0], ("CREDIT_EXPIRY_INTERVAL_SECS", "0")])
        .await
        .unwrap();
    World {
        env,
        _crossmint: crossmint,
        api,
        ingester,
        _worker: worker,
    }
}

impl World {
    /// Orders `package` through the API and pays for it through the webhook
    /// path; returns the order id once the credits are granted.
    async fn buy(&self, user: &str, package: &str) -> String {
        let created = self
            .api
            .post(
                "/api/payments/orders",
                Some(user),
                &json!({"packageId": package}),
            )
            .await;
        assert_eq!(created.status, 201, "{created:?}");
        let order_id = created.body["orderId"].as_str().unwrap().to_owned();
        let price = created.body["amount"].as_str().unwrap().to_owned();
        let paid = payment_succeeded(&order_id, user, package, &price);
        assert_eq!(self.ingester.send(&paid).await.status, 200);
        self.env
            .wait_for_count(
                &format!(
                    "select count(*) from payment_orders
                     where provider_order_id = '{order_id}' and status = 'completed'"
                ),
                1,
                WAIT,
            )
            .await;
        order_id
    }

    async fn spend(&self, user: &str, amount: i64, key: &str) -> (u16, Value) {
        let answer = self
            .api
            .post(
                "/api/v1/user/credits/consume",
                Some(user),
                &json!({"amount": amount, "description": "test spend", "idempotencyKey": key}),
            )
            .await;
        (answer.status, answer.body)
    }

    async fn credits(&self, user: &str) -> Value {
        let answer = self.api.get("/api/v1/user/credits", Some(user)).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        answer.body
    }
}

#[tokio::test]
async fn spending_takes_from_the_balance_once_per_idempotency_key() {
    let world = world("").await;
    world.buy("spender", "starter").await;
    assert_eq!(world.credits("spender").await["credits"], 500);

    let (status, body) = world.spend("spender", 120, "k-1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["remainingCredits"], 380);
    assert_eq!(body["replayed"], false);

    // The same key again: the first answer, nothing spent twice.
    let (status, again) = world.spend("spender", 120, "k-1").await;
    assert_eq!(status, 200);
    assert_eq!(again["replayed"], true);
    assert_eq!(again["transactionId"], body["transactionId"]);
    assert_eq!(world.credits("spender").await["credits"], 380);

    // The same key, another amount: a conflict, nothing spent.
    let (status, reused) = world.spend("spender", 50, "k-1").await;
    assert_eq!(status, 409);
    assert_eq!(reused["code"], "IDEMPOTENCY_KEY_REUSED");

    // More than there is: a conflict, nothing spent.
    let (status, short) = world.spend("spender", 381, "k-2").await;
    assert_eq!(status, 409);
    assert_eq!(short["code"], "INSUFFICIENT_CREDITS");
    assert_eq!(short["details"]["available"], 380);
    assert_eq!(world.credits("spender").await["credits"], 380);

    // Keys are per user: another user's k-1 is theirs.
    let (status, other) = world.spend("nobody", 1, "k-1").await;
    assert_eq!(status, 409);
    assert_eq!(other["code"], "INSUFFICIENT_CREDITS");

    for bad in [
        json!({"amount": 0, "idempotencyKey": "k"}),
        json!({"amount": 1.5, "idempotencyKey": "k"}),
        json!({"amount": 5, "idempotencyKey": ""}),
        json!({"amount": 5}),
    ] {
        let answer = world
            .api
            .post("/api/v1/user/credits/consume", Some("spender"), &bad)
            .await;
        assert_eq!(answer.status, 400, "{bad}: {answer:?}");
        assert_eq!(answer.body["code"], "INVALID_REQUEST");
    }
    let ledger = world
        .env
        .count(
            "select coalesce(sum(credits), 0)::int8 from credit_ledger where user_id = 'spender'",
        )
        .await;
    assert_eq!(ledger, 380, "the balance is the sum of the ledger");
}

#[tokio::test]
async fn racing_spends_never_overdraw_and_a_racing_key_spends_once() {
    let world = world("").await;
    world.buy("racer", "starter").await;

    // 20 spends of 100 at once against 500: exactly five can succeed.
    let spends = (0..20).map(|n| {
        let key = format!("race-{n}");
        let world = &world;
        async move { world.spend("racer", 100, &key).await }
    });
    let results = futures_util::future::join_all(spends).await;
    let ok = results.iter().filter(|(s, _)| *s == 200).count();
    let refused = results
        .iter()
        .filter(|(s, b)| *s == 409 && b["code"] == "INSUFFICIENT_CREDITS")
        .count();
    assert_eq!((ok, refused), (5, 15), "{results:?}");
    assert_eq!(world.env.balance("racer").await, 0);

    world.buy("racer", "starter").await;
    // The same key ten times at once: one spend.
    let same = (0..10).map(|_| world.spend("racer", 70, "same-key"));
    let results = futures_util::future::join_all(same).await;
    assert!(results.iter().all(|(s, _)| *s == 200), "{results:?}");
    assert_eq!(
        results
            .iter()
            .filter(|(_, b)| b["replayed"] == false)
            .count(),
        1
    );
    assert_eq!(world.env.balance("racer").await, 430);
    assert_eq!(
        world
            .env
            .count("select count(*) from credit_ledger where kind = 'spend'")
            .await,
        6
    );
}

#[tokio::test]
async fn expiry_removes_only_the_unspent_rest_earliest_expiring_spent_first() {
    let world = world("starter=30,pro=365").await;
    world.buy("saver", "starter").await; // 500, 30 days
    world.buy("saver", "pro").await; // 3300, 365 days
    world.buy("saver", "vip").await; // 9600, never
    let credits = world.credits("saver").await;
    assert_eq!(credits["credits"], 13_400);
    assert_eq!(credits["expiringSoon"]["credits"], 500, "{credits}");

    // 700 comes from the starter grant first (500), then the pro grant (200).
    let (status, body) = world.spend("saver", 700, "before-expiry").await;
    assert_eq!(status, 200, "{body}");
    let remaining: Vec<(String, i64)> = sqlx::query_as(
        "select o.package_id, l.remaining from credit_lots l
         join credit_ledger g on g.id = l.grant_id join payment_orders o on o.id = g.order_id
         order by l.expires_at",
    )
    .fetch_all(&world.env.pool)
    .await
    .unwrap();
    assert_eq!(remaining, [("starter".into(), 0), ("pro".into(), 3100)]);

    // A year passes for the pro grant.
    sqlx::query(
        "update credit_lots set expires_at = now() - interval '1 minute' where remaining = 3100",
    )
    .execute(&world.env.pool)
    .await
    .unwrap();
    // Spendable at once, before any job ran: the expired rest is not.
    assert_eq!(world.credits("saver").await["credits"], 9600);

    // Two runs at once (two instances), then another: one expiry entry.
    let (a, b) = tokio::join!(
        world.env.admin(&["expire-credits"]),
        world.env.admin(&["expire-credits"])
    );
    let reports = format!("{}{}", a.unwrap(), b.unwrap());
    assert!(reports.contains("expired 3100 credits"), "{reports}");
    let again = world.env.admin(&["expire-credits"]).await.unwrap();
    assert!(again.contains("expired 0 credits"), "{again}");

    assert_eq!(world.env.balance("saver").await, 9600);
    assert_eq!(
        world
            .env
            .count("select count(*) from credit_ledger where kind = 'expiry' and credits = -3100")
            .await,
        1
    );
    assert_eq!(
        world
            .env
            .count("select sum(credits)::int8 from credit_ledger where user_id = 'saver'")
            .await,
        9600,
        "the balance is the sum of the ledger"
    );

    // What never expires is still spendable, to the last credit.
    let (status, body) = world.spend("saver", 9600, "after-expiry").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["remainingCredits"], 0);
}

#[tokio::test]
async fn the_worker_runs_the_expiry_on_its_schedule() {
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let _worker = env
        .start_worker(&[
            ("CREDIT_VALIDITY_DAYS", "starter=1"),
            ("CREDIT_EXPIRY_INTERVAL_SECS", "1"),
        ])
        .await
        .unwrap();
    // An order the worker builds from the webhook's metadata takes its terms too.
    let paid = payment_succeeded("scheduled-1", "sleeper", "starter", "10");
    assert_eq!(ingester.send(&paid).await.status, 200);
    env.wait_all_processed(1, WAIT).await;
    assert_eq!(env.balance("sleeper").await, 500);
    assert_eq!(
        env.count("select count(*) from credit_lots where remaining = 500 and expires_at > now() + interval '23 hours'").await,
        1
    );

    sqlx::query("update credit_lots set expires_at = now() - interval '1 second'")
        .execute(&env.pool)
        .await
        .unwrap();
    env.wait_for_count(
        "select balance from user_credits where user_id = 'sleeper'",
        0,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(
        env.count("select count(*) from credit_ledger where kind = 'expiry'")
            .await,
        1
    );
}

#[tokio::test]
async fn the_ledger_pages_every_movement_newest_first_by_cursor() {
    let world = world("").await;
    let order = world.buy("reader", "starter").await;
    world.buy("someone-else", "starter").await;
    for (n, amount) in [(1, 100), (2, 50), (3, 25)] {
        let (status, body) = world.spend("reader", amount, &format!("read-{n}")).await;
        assert_eq!(status, 200, "{body}");
    }
    let page = |cursor: Option<String>| {
        let api = &world.api;
        async move {
            let path = match cursor {
                Some(c) => format!("/api/v1/user/credits/ledger?limit=2&cursor={c}"),
                None => "/api/v1/user/credits/ledger?limit=2".to_owned(),
            };
            let answer = api.get(&path, Some("reader")).await;
            assert_eq!(answer.status, 200, "{answer:?}");
            answer.body
        }
    };
    let first = page(None).await;
    let entries = first["entries"].as_array().unwrap();
    let summary = |entries: &[Value]| -> Vec<(String, i64, i64)> {
        entries
            .iter()
            .map(|e| {
                (
                    e["kind"].as_str().unwrap().to_owned(),
                    e["credits"].as_i64().unwrap(),
                    e["balanceAfter"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        summary(entries),
        [("spend".into(), -25, 325), ("spend".into(), -50, 350)]
    );
    assert_eq!(entries[0]["description"], "test spend");
    let second = page(Some(first["nextCursor"].as_str().unwrap().to_owned())).await;
    let rest = second["entries"].as_array().unwrap();
    assert_eq!(
        summary(rest),
        [
            ("spend".into(), -100, 400),
            ("purchase_grant".into(), 500, 500)
        ]
    );
    assert_eq!(rest[1]["orderId"], order.as_str());
    assert_eq!(
        rest[1]["description"],
        Value::Null,
        "only a spend's own words"
    );
    // Exactly four entries: the second page is the last.
    assert_eq!(second["nextCursor"], Value::Null, "{second}");
    assert!(
        !second.to_string().contains("someone-else") && !first.to_string().contains("someone-else"),
        "only the caller's own entries"
    );

    for bad in ["cursor=abc", "cursor=-1", "limit=0", "limit=201"] {
        let answer = world
            .api
            .get(
                &format!("/api/v1/user/credits/ledger?{bad}"),
                Some("reader"),
            )
            .await;
        assert_eq!(answer.status, 400, "{bad}: {answer:?}");
        assert_eq!(answer.body["code"], "INVALID_REQUEST");
    }
    let anonymous = world.api.get("/api/v1/user/credits/ledger", None).await;
    assert_eq!(anonymous.status, 401);
}
