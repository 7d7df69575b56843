//! The API against a sign-in provider's real keys: tokens minted by PyJWT
//! with `cryptography` keys (RSA-2048, P-256, Ed25519), their public halves
//! served as a JWKS document over HTTPS by a server with a test CA's
//! certificate (trusted through `SSL_CERT_FILE`). And the product's
//! backend spending for a user with an API key made by `ledgerhook-admin`.

use std::process::Command;
use std::time::Duration;

use ledgerhook_tests::api_client::{Api, token_for};
use ledgerhook_tests::fake_crossmint::FakeCrossmint;
use ledgerhook_tests::harness::{Answer, TestEnv};
use ledgerhook_tests::jwks_server::JwksServer;
use ledgerhook_tests::python_venv::venv_with;
use ledgerhook_tests::tls::{PemDir, TestCa};
use reqwest::Method;
use serde_json::{Value, json};

const ISSUER: &str = "https://sign-in.example/";
const AUDIENCE: &str = "ledgerhook-api";
/// Short, so the test sees a rotation without waiting long.
const MIN_REFRESH_SECS: u64 = 2;
const BALANCE: &str = "/api/v1/user/credits";
const SPEND: &str = "/api/v1/user/credits/consume";

/// The keys and tokens `tests/jwks/mint_tokens.py` made.
fn minted() -> Value {
    let python = venv_with("jwt-venv", "pyjwt[crypto]==2.15.1").join("bin/python");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/jwks/mint_tokens.py");
    let output = Command::new(python)
        .args([script, ISSUER, AUDIENCE])
        .output()
        .expect("running mint_tokens.py");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("mint_tokens.py prints JSON")
}

async fn as_bearer(api: &Api, token: &str) -> Answer {
    api.send_with(
        Method::GET,
        BALANCE,
        &[("authorization", &format!("Bearer {token}"))],
        None,
    )
    .await
}

/// The API trusting a sign-in provider whose keys are served over HTTPS by
/// a server with a test CA's certificate (`SSL_CERT_FILE`).
struct World {
    api: Api,
    jwks: JwksServer,
    _env: TestEnv,
    _crossmint: FakeCrossmint,
    _files: PemDir,
}

impl World {
    /// `document`: the key set served (`None`: 503 until one is published).
    async fn start(document: Option<Value>, extra: &[(&str, &str)]) -> Self {
        let env = TestEnv::new().await.unwrap();
        let crossmint = FakeCrossmint::start().await.unwrap();
        let ca = TestCa::new("sign-in provider test CA").unwrap();
        let jwks = JwksServer::start(&ca.issue_server_cert().unwrap(), document)
            .await
            .unwrap();
        let files = PemDir::new().unwrap();
        let ca_file = files.ca_file("ca", &ca).unwrap();
        let ca_file = ca_file.to_str().expect("temporary paths are UTF-8");
        let min_refresh = MIN_REFRESH_SECS.to_string();
        let mut settings = vec![
            ("AUTH_JWKS_URL", jwks.url.as_str()),
            ("AUTH_AUDIENCE", AUDIENCE),
            ("AUTH_JWKS_MIN_REFRESH_SECS", &min_refresh),
            ("SSL_CERT_FILE", ca_file),
        ];
        settings.extend_from_slice(extra);
        let api = env.start_api(&crossmint.api_url, &settings).await.unwrap();
        Self {
            api,
            jwks,
            _env: env,
            _crossmint: crossmint,
            _files: files,
        }
    }
}

#[tokio::test]
async fn tokens_signed_by_the_providers_published_keys_are_accepted_and_no_other() {
    let minted = minted();
    let tokens = &minted["tokens"];
    // The shared secret stays configured too (the harness sets it): both
    // kinds of token work side by side.
    let world = World::start(Some(minted["jwks"].clone()), &[("AUTH_ISSUER", ISSUER)]).await;
    let (api, jwks) = (&world.api, &world.jwks);
    assert_eq!(jwks.fetches(), 1, "the keys are fetched once at start");

    for (name, user) in [
        ("rs256", "user-rsa"),
        ("es256", "user-ec"),
        ("eddsa", "user-ed"),
    ] {
        let answer = as_bearer(api, tokens[name].as_str().unwrap()).await;
        assert_eq!(answer.status, 200, "{name}: {answer:?}");
        assert_eq!(answer.body["userId"], user, "{name}");
    }
    let ours = api.get(BALANCE, Some("user-hs")).await;
    assert_eq!(ours.status, 200, "the shared secret's tokens still work");

    for (name, reason) in [
        ("wrong_issuer", "issuer"),
        ("wrong_audience", "audience"),
        ("no_audience", "audience"),
        ("expired", "expired"),
        ("too_long", "lifetime"),
        ("no_exp", "no_exp"),
        ("wrong_key", "signature"),
        ("unknown_kid", "unknown_kid"),
        ("no_kid", "no_kid"),
        ("ec_as_rsa", "algorithm"),
        ("crit", "crit"),
        // HS256 goes to the shared secret, never to a provider's key.
        ("confused", "signature"),
    ] {
        let before = api
            .service
            .metric(
                "ledgerhook_api_auth_refused_total",
                &[&format!("reason=\"{reason}\"")],
            )
            .await;
        let answer = as_bearer(api, tokens[name].as_str().unwrap()).await;
        assert_eq!(answer.status, 401, "{name}: {answer:?}");
        assert_eq!(answer.body["code"], "UNAUTHORIZED", "{name}");
        let after = api
            .service
            .metric(
                "ledgerhook_api_auth_refused_total",
                &[&format!("reason=\"{reason}\"")],
            )
            .await;
        assert_eq!(after, before + 1.0, "{name} counted under {reason}");
    }

    // A stream of made-up key ids costs at most one fetch per interval,
    // however many and however concurrent.
    tokio::time::sleep(Duration::from_secs(MIN_REFRESH_SECS + 1)).await;
    let fetched = jwks.fetches();
    let answers = futures_util::future::join_all(
        tokens["made_up_kids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|token| as_bearer(api, token.as_str().unwrap())),
    )
    .await;
    assert!(answers.iter().all(|a| a.status == 401), "{answers:?}");
    assert!(
        jwks.fetches() <= fetched + 1,
        "{} fetches for 40 unknown kids",
        jwks.fetches() - fetched
    );

    // A rotation: the provider publishes a new key and signs with it; once
    // the interval has passed, its first token fetches the new set.
    jwks.publish(minted["rotated_jwks"].clone());
    tokio::time::sleep(Duration::from_secs(MIN_REFRESH_SECS + 1)).await;
    let rotated = as_bearer(api, tokens["rotated"].as_str().unwrap()).await;
    assert_eq!(rotated.status, 200, "{rotated:?}");
    assert_eq!(rotated.body["userId"], "user-rotated");
    let held = api.service.metric("ledgerhook_api_jwks_keys", &[]).await;
    assert_eq!(held, 4.0, "the rotated set's four keys are held");
}

#[tokio::test]
async fn without_the_providers_keys_its_tokens_wait_with_a_503_not_a_401() {
    let minted = minted();
    // The provider's key endpoint is down when the API starts, and its
    // keys are the only ones: HS256 tokens have no key here.
    let world = World::start(None, &[("AUTH_JWT_SECRET", "")]).await;
    let (api, jwks) = (&world.api, &world.jwks);
    let token = minted["tokens"]["rs256"].as_str().unwrap();

    let waiting = as_bearer(api, token).await;
    assert_eq!(waiting.status, 503, "{waiting:?}");
    assert_eq!(waiting.body["code"], "AUTH_KEYS_UNAVAILABLE");
    assert_eq!(waiting.retry_after.as_deref(), Some("5"));
    let hs256 = api.get(BALANCE, Some("user-hs")).await;
    assert_eq!(hs256.status, 401, "no shared secret here: {hs256:?}");

    jwks.publish(minted["jwks"].clone());
    tokio::time::sleep(Duration::from_secs(MIN_REFRESH_SECS + 1)).await;
    let back = as_bearer(api, token).await;
    assert_eq!(back.status, 200, "{back:?}");
    assert_eq!(back.body["userId"], "user-rsa");
}

/// The key `ledgerhook-admin api-key add` printed.
async fn add_key(env: &TestEnv, name: &str) -> String {
    let run = env
        .admin_run(
            &["--json", "--operator", "root", "api-key", "add", name],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    run.json()["key"].as_str().expect("the key").to_owned()
}

#[tokio::test]
async fn the_products_backend_spends_for_a_named_user_with_its_api_key_until_revoked() {
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let api = env.start_api(&crossmint.api_url, &[]).await.unwrap();
    env.admin(&[
        "--operator",
        "root",
        "grant",
        "--user",
        "buyer-1",
        "--credits",
        "100",
        "--idempotency-key",
        "seed",
        "--reason",
        "test credits",
    ])
    .await
    .unwrap();
    let badly_named = env
        .admin_run(
            &["--operator", "root", "api-key", "add", "Billing Backend"],
            &[],
        )
        .await
        .unwrap();
    assert_ne!(badly_named.code, Some(0), "{badly_named:?}");
    assert!(
        format!("{}{}", badly_named.stdout, badly_named.stderr).contains("INVALID_API_KEY_NAME"),
        "{badly_named:?}"
    );
    let key = add_key(&env, "billing-backend").await;
    assert!(key.starts_with("lhk_"), "{key}");
    let stored: Vec<u8> = sqlx::query_scalar("select key_hash from api_keys")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&stored).contains(&key[4..]),
        "only a hash is kept"
    );
    let bearer = format!("Bearer {key}");
    let spend = |headers: Vec<(&'static str, String)>, idempotency_key: &'static str| {
        let api = &api;
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            api.send_with(
                Method::POST,
                SPEND,
                &headers,
                Some(&json!({"amount": 30, "idempotencyKey": idempotency_key})),
            )
            .await
        }
    };

    let spent = spend(
        vec![
            ("authorization", bearer.clone()),
            ("ledgerhook-user", "buyer-1".into()),
        ],
        "k1",
    )
    .await;
    assert_eq!(spent.status, 200, "{spent:?}");
    assert_eq!(spent.body["remainingCredits"], 70);
    let by: Option<String> =
        sqlx::query_scalar("select api_key from credit_spends where idempotency_key = 'k1'")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(by.as_deref(), Some("billing-backend"), "who spent is kept");
    let balance = api
        .send_with(
            Method::GET,
            BALANCE,
            &[("authorization", &bearer), ("ledgerhook-user", "buyer-1")],
            None,
        )
        .await;
    assert_eq!(balance.body["credits"], 70, "{balance:?}");

    // The key is for spending: the user's other routes want their token.
    let orders = api
        .send_with(
            Method::GET,
            "/api/payments/history",
            &[("authorization", &bearer), ("ledgerhook-user", "buyer-1")],
            None,
        )
        .await;
    assert_eq!(orders.status, 401, "{orders:?}");

    let unnamed = spend(vec![("authorization", bearer.clone())], "k2").await;
    assert_eq!(unnamed.status, 400, "{unnamed:?}");
    assert_eq!(unnamed.body["details"]["field"], "Ledgerhook-User");
    let too_long = spend(
        vec![
            ("authorization", bearer.clone()),
            ("ledgerhook-user", "u".repeat(257)),
        ],
        "k2",
    )
    .await;
    assert_eq!(too_long.status, 400, "{too_long:?}");
    // A user's token cannot borrow the header to act for someone else.
    let borrowed = spend(
        vec![
            ("authorization", format!("Bearer {}", token_for("buyer-2"))),
            ("ledgerhook-user", "buyer-1".into()),
        ],
        "k3",
    )
    .await;
    assert_eq!(borrowed.status, 400, "{borrowed:?}");
    let made_up = format!("Bearer lhk_{}", "A".repeat(43));
    for authorization in [made_up.as_str(), "Bearer lhk_short", "Bearer lhk_"] {
        let refused = spend(
            vec![
                ("authorization", authorization.to_owned()),
                ("ledgerhook-user", "buyer-1".into()),
            ],
            "k4",
        )
        .await;
        assert_eq!(refused.status, 401, "{authorization}: {refused:?}");
    }

    let revoked = env
        .admin(&["--operator", "root", "api-key", "revoke", "billing-backend"])
        .await
        .unwrap();
    assert!(revoked.contains("revoked billing-backend"), "{revoked}");
    let after = spend(
        vec![
            ("authorization", bearer.clone()),
            ("ledgerhook-user", "buyer-1".into()),
        ],
        "k5",
    )
    .await;
    assert_eq!(
        after.status, 401,
        "a revoked key is refused at once: {after:?}"
    );
    let listed = env.admin(&["api-key", "list"]).await.unwrap();
    assert!(
        listed.contains("billing-backend") && listed.contains("revoked"),
        "{listed}"
    );
    assert!(!listed.contains(&key), "the list never shows a key");
    let audit: i64 = sqlx::query_scalar(
        "select count(*) from operator_actions where command in ('api-key add', 'api-key revoke')
         and operator = 'root'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(audit, 2);
    let again = env
        .admin_run(
            &["--operator", "root", "api-key", "add", "billing-backend"],
            &[],
        )
        .await
        .unwrap();
    assert_ne!(again.code, Some(0), "a name is never reused: {again:?}");
}
