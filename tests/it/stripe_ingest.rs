//! `POST /webhooks/stripe`: Stripe as a second provider on the same
//! ingester. Every refusal the Crossmint route makes (rejections.rs) is
//! made here too, with the same status and code, counted under
//! `provider="stripe"`, and nothing recorded; a good event is recorded once
//! with provider `stripe` and queued with `ledgerhook-provider: stripe`;
//! and our signatures and Stripe's own library's agree both ways.
//!
//! Cost: a test world and an ingester take about a second to start, so the
//! rejections share one (a table of cases run in turn, each measured by the
//! change it makes to the counters), rather than one world per case.

use std::path::{Path, PathBuf};
use std::process::Command;

use lapin::options::BasicGetOptions;
use ledgerhook_domain::Provider;
use ledgerhook_providers::stripe::signature::StripeSecret;
use ledgerhook_runtime::amqp::{self, Topology, carrier};
use ledgerhook_store::deliveries::record::{self, NewDelivery};
use ledgerhook_tests::harness::{Answer, Ingester, TestEnv};
use ledgerhook_tests::stripe_python::{PY_SIGN, python, stripe_python};
use ledgerhook_tests::stripe_webhook::{
    STRIPE_TEST_SECRET, new_event_id, sign_stripe, stripe_event,
};
use ledgerhook_tests::webhook::{TEST_SECRET, now_secs, payment_succeeded, test_secret};
use serde_json::json;

/// The body limit the rejection cases' ingester runs with.
const MAX_BODY_BYTES: usize = 4096;
/// A second live secret, as while Stripe rolls an endpoint's secret.
const ROLLED_SECRET: &str = "whsec_test_ledgerhook_fake_rolled_secret";

fn event_body(id: &str) -> Vec<u8> {
    serde_json::to_vec(&stripe_event(id)).unwrap()
}

fn signature(value: String) -> Vec<(&'static str, String)> {
    vec![("stripe-signature", value)]
}

/// The header for `body` signed with the test secret at `timestamp`.
fn signed_at(timestamp: i64, body: &[u8]) -> Vec<(&'static str, String)> {
    signature(sign_stripe(STRIPE_TEST_SECRET, timestamp, body))
}

fn signed(body: &[u8]) -> Vec<(&'static str, String)> {
    signed_at(now_secs(), body)
}

/// The `v1` of a header we made, to build odd headers around it.
fn v1_of(header: &str) -> String {
    header.split_once(",v1=").unwrap().1.to_owned()
}

/// One refusal to provoke: what is sent, and what must come back.
struct Case {
    name: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
}

fn case(
    name: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        name,
        headers,
        body,
        status,
        code,
    }
}

/// The Crossmint route's refusals (rejections.rs), in Stripe's terms.
fn cases() -> Vec<Case> {
    let body = || event_body(&new_event_id());
    let now = now_secs();
    let big = serde_json::to_vec(&json!({"id": new_event_id(), "pad": "x".repeat(MAX_BODY_BYTES)}))
        .unwrap();
    let mut forged_big = big.clone();
    forged_big[30] ^= 1;
    let mut tampered = body();
    let tampered_signature = signed(&tampered);
    tampered[12] ^= 1;
    let good = body();
    let good_v1 = v1_of(&sign_stripe(STRIPE_TEST_SECRET, now, &good));
    let deep = format!("{}{}", "[".repeat(2_000), "]".repeat(2_000)).into_bytes();
    let mut not_utf8 = br#"{"id":"evt_"#.to_vec();
    not_utf8.extend_from_slice(b"\xff\xfe\"}");
    let long_id = event_body(&format!("evt_{}", "x".repeat(1000)));
    let hostile = format!(
        "t={now},{}",
        vec![format!("v1={}", "0".repeat(64)); 100].join(",")
    );
    let b = body();
    vec![
        case(
            "no signature header",
            Vec::new(),
            body(),
            401,
            "SIGNATURE_MISSING",
        ),
        case(
            "a signature without its timestamp",
            signature(format!("v1={good_v1}")),
            good.clone(),
            401,
            "SIGNATURE_MALFORMED",
        ),
        case(
            "the wrong secret",
            signature(sign_stripe("whsec_test_ledgerhook_wrong_secret", now, &b)),
            b,
            401,
            "SIGNATURE_VERIFICATION_FAILED",
        ),
        case(
            "a tampered body",
            tampered_signature,
            tampered,
            401,
            "SIGNATURE_VERIFICATION_FAILED",
        ),
        case(
            "a signature moved to another timestamp",
            signature(format!("t={},v1={good_v1}", now - 1)),
            good.clone(),
            401,
            "SIGNATURE_VERIFICATION_FAILED",
        ),
        // An hour off either way: beyond the 300 s tolerance however long
        // the cases before this one take.
        case(
            "a stale timestamp",
            signed_at(now - 3600, &good),
            good.clone(),
            401,
            "TIMESTAMP_TOO_OLD",
        ),
        case(
            "a future timestamp",
            signed_at(now + 3600, &good),
            good.clone(),
            401,
            "TIMESTAMP_IN_FUTURE",
        ),
        case(
            "a v1 that is not hex",
            signature(format!("t={now},v1=not-hex!")),
            good.clone(),
            401,
            "SIGNATURE_MALFORMED",
        ),
        case(
            "a v0 only",
            signature(format!("t={now},v0={good_v1}")),
            good.clone(),
            401,
            "SIGNATURE_MALFORMED",
        ),
        case(
            "a timestamp that is not a number",
            signature(format!("t=yesterday,v1={good_v1}")),
            good.clone(),
            401,
            "SIGNATURE_MALFORMED",
        ),
        case(
            "a repeated t",
            signature(format!("t={now},t={now},v1={good_v1}")),
            good.clone(),
            401,
            "SIGNATURE_MALFORMED",
        ),
        case(
            "a repeated header",
            [signed(&good), signature(format!("t={now},v1={good_v1}"))].concat(),
            good.clone(),
            400,
            "AMBIGUOUS_SIGNATURE_HEADERS",
        ),
        case(
            "an overlong event id",
            signed(&long_id),
            long_id,
            400,
            "INVALID_DELIVERY_ID",
        ),
        case(
            "an event without an id",
            signed(br#"{"object":"event"}"#),
            br#"{"object":"event"}"#.to_vec(),
            400,
            "INVALID_DELIVERY_ID",
        ),
        case(
            "an id that is not text",
            signed(br#"{"id":42}"#),
            br#"{"id":42}"#.to_vec(),
            400,
            "INVALID_DELIVERY_ID",
        ),
        case(
            "an empty id",
            signed(br#"{"id":""}"#),
            br#"{"id":""}"#.to_vec(),
            400,
            "INVALID_DELIVERY_ID",
        ),
        // PostgreSQL text cannot hold NUL: storing it failed, and the
        // sender was told 503 and retried for days.
        case(
            "an id holding NUL",
            signed(br#"{"id":"evt_\u0000x"}"#),
            br#"{"id":"evt_\u0000x"}"#.to_vec(),
            400,
            "INVALID_DELIVERY_ID",
        ),
        case(
            "an id holding a control character",
            signed(br#"{"id":"evt_\u001b]0;x"}"#),
            br#"{"id":"evt_\u001b]0;x"}"#.to_vec(),
            400,
            "INVALID_DELIVERY_ID",
        ),
        case(
            "a signed body over the limit",
            signed(&big),
            big.clone(),
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        case(
            "a forged body over the limit",
            signed(&big),
            forged_big,
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        case(
            "a header of 100 entries",
            signature(hostile),
            good.clone(),
            400,
            "SIGNATURE_HEADER_TOO_LARGE",
        ),
        case(
            "a body nested 2000 deep",
            signed(&deep),
            deep,
            400,
            "JSON_TOO_DEEP",
        ),
        case(
            "invalid UTF-8",
            signed(&not_utf8),
            not_utf8,
            400,
            "INVALID_JSON",
        ),
        case(
            "a body that is not JSON",
            signed(b"id=evt_1&amount=10"),
            b"id=evt_1&amount=10".to_vec(),
            400,
            "INVALID_JSON",
        ),
        case(
            "an empty body",
            signed(b""),
            Vec::new(),
            400,
            "INVALID_JSON",
        ),
    ]
}

async fn counted(ingester: &Ingester, provider: &str, outcome: &str) -> f64 {
    ingester
        .service
        .metric(
            "ledgerhook_webhook_deliveries_total",
            &[
                &format!("provider=\"{provider}\""),
                &format!("outcome=\"{outcome}\""),
            ],
        )
        .await
}

/// Checks one case's whole promise; what went wrong, if anything.
async fn check(env: &TestEnv, ingester: &Ingester, case: Case) -> Result<(), String> {
    let outcome = case.code.to_ascii_lowercase();
    let before = counted(ingester, "stripe", &outcome).await;
    let answer: Answer = ingester.send_stripe_raw(&case.headers, case.body).await;
    let mut wrong = Vec::new();
    if answer.status != case.status || answer.body["code"] != case.code {
        wrong.push(format!("answered {answer:?}"));
    }
    if answer.body["error"].as_str().is_none_or(str::is_empty) {
        wrong.push("no error text".to_owned());
    }
    // Stripe knows nothing of Svix's delivery control (see rejection.rs).
    if answer.header("webhook-delivery").is_some() {
        wrong.push("sent Svix's webhook-delivery header".to_owned());
    }
    let after = counted(ingester, "stripe", &outcome).await;
    if after - before != 1.0 {
        wrong.push(format!("{outcome} counted {} times", after - before));
    }
    let recorded = env.count("select count(*) from webhook_deliveries").await;
    if recorded != 0 {
        wrong.push(format!("{recorded} deliveries recorded"));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!("{}: {}", case.name, wrong.join("; ")))
    }
}

#[tokio::test]
async fn every_refusal_of_the_crossmint_route_is_made_on_the_stripe_route_too() {
    let env = TestEnv::new().await.unwrap();
    let limit = MAX_BODY_BYTES.to_string();
    let ingester = env
        .start_ingester(&[("WEBHOOK_MAX_BODY_BYTES", &limit)])
        .await
        .unwrap();

    let mut failures = Vec::new();
    let cases = cases();
    let count = cases.len();
    for case in cases {
        if let Err(failure) = check(&env, &ingester, case).await {
            failures.push(failure);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(counted(&ingester, "stripe", "accepted").await, 0.0);
    assert_eq!(
        counted(&ingester, "crossmint", "signature_missing").await,
        0.0,
        "counted under the route's provider"
    );
    assert_eq!(env.count("select count(*) from delivery_outbox").await, 0);

    // Last, as it breaks the database for this ingester: an outage is a
    // 503 with Retry-After, as on the Crossmint route.
    sqlx::query("alter table webhook_deliveries rename to webhook_deliveries_away")
        .execute(&env.pool)
        .await
        .unwrap();
    let answer = ingester.send_stripe(&stripe_event(&new_event_id())).await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(answer.body["code"], "STORAGE_UNAVAILABLE");
    assert_eq!(answer.retry_after.as_deref(), Some("5"));
    assert_eq!(
        counted(&ingester, "stripe", "storage_unavailable").await,
        1.0
    );
    assert!(
        !ingester.service.log().contains(&STRIPE_TEST_SECRET[6..]),
        "the secret never reaches the log"
    );
}

/// Takes the next message off the work queue (the test starts no worker),
/// with its provider header and body.
async fn next_queued(env: &TestEnv) -> Vec<(String, Vec<u8>)> {
    let connection = amqp::connect(&env.amqp_url, "stripe-ingest-test")
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let queue = Topology::new(&env.queue_prefix).queue;
    let Some(message) = channel
        .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    else {
        return Vec::new();
    };
    // Deliveries recorded together may leave in one carrier, each with its
    // own provider.
    let headers = message.properties.headers().as_ref();
    if let Some(carried) = carrier::carried(headers, message.data.len()) {
        return carried
            .unwrap()
            .into_iter()
            .map(|d| (d.provider.to_owned(), message.data[d.body].to_vec()))
            .collect();
    }
    let provider = amqp::header_str(headers, amqp::HEADER_PROVIDER)
        .unwrap_or("<none>")
        .to_owned();
    vec![(provider, message.data.clone())]
}

#[tokio::test]
async fn an_event_is_recorded_once_as_stripe_and_queued_with_its_provider() {
    let env = TestEnv::new().await.unwrap();
    let both = format!("{ROLLED_SECRET} {STRIPE_TEST_SECRET}");
    let ingester = env
        .start_ingester(&[("STRIPE_WEBHOOK_SECRET", &both)])
        .await
        .unwrap();

    // Odd spacing: the exact bytes must be what is stored and queued.
    let id = new_event_id();
    let raw =
        format!(r#"{{ "id":"{id}",  "object":"event", "type":"invoice.paid" }}"#).into_bytes();
    let answer = ingester.send_stripe_raw(&signed(&raw), raw.clone()).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body["status"], "accepted");

    // Stripe resends an event it got no 2xx for, under the same id (and,
    // after a rolled secret, maybe signed with the other one).
    let resent = signature(sign_stripe(ROLLED_SECRET, now_secs(), &raw));
    let again = ingester.send_stripe_raw(&resent, raw.clone()).await;
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(again.body["status"], "duplicate");

    // The rolled secret verifies a new event too, and says so.
    let rolled_id = new_event_id();
    let rolled_body = event_body(&rolled_id);
    let rolled = signature(sign_stripe(ROLLED_SECRET, now_secs(), &rolled_body));
    let answer = ingester.send_stripe_raw(&rolled, rolled_body).await;
    assert_eq!(answer.body["status"], "accepted", "{answer:?}");

    // A Crossmint delivery beside them keeps its own provider.
    assert_eq!(
        ingester
            .send(&payment_succeeded("o-beside", "u", "starter", "10"))
            .await
            .status,
        200
    );

    let rows: Vec<(String, String, Vec<u8>, String)> = sqlx::query_as(
        "select provider, delivery_id, body, verified_by from webhook_deliveries order by id",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    let stripe = |secret: &str| {
        StripeSecret::parse(secret)
            .unwrap()
            .fingerprint()
            .to_owned()
    };
    assert_eq!(rows.len(), 3, "the resend made no row: {rows:?}");
    assert_eq!(
        rows[0],
        (
            "stripe".into(),
            id.clone(),
            raw.clone(),
            stripe(STRIPE_TEST_SECRET)
        )
    );
    assert_eq!(
        (&rows[1].0, &rows[1].1, &rows[1].3),
        (&"stripe".to_owned(), &rolled_id, &stripe(ROLLED_SECRET))
    );
    assert_eq!(
        (&rows[2].0, &rows[2].3),
        (
            &"crossmint".to_owned(),
            &test_secret().fingerprint().to_owned()
        )
    );
    assert_eq!(counted(&ingester, "stripe", "accepted").await, 2.0);
    assert_eq!(counted(&ingester, "stripe", "duplicate").await, 1.0);
    assert_eq!(counted(&ingester, "crossmint", "accepted").await, 1.0);

    // Published in the order recorded, each under its own provider.
    let mut queued = Vec::new();
    ledgerhook_tests::harness::eventually(std::time::Duration::from_secs(20), async || {
        queued.extend(next_queued(&env).await);
        let providers: Vec<&str> = queued.iter().map(|(p, _)| p.as_str()).collect();
        if queued.len() >= 3 {
            Ok(())
        } else {
            Err(format!("queued so far: {providers:?}"))
        }
    })
    .await;
    let mut providers: Vec<&str> = queued.iter().map(|(p, _)| p.as_str()).collect();
    providers.sort_unstable();
    assert_eq!(providers, ["crossmint", "stripe", "stripe"]);
    assert!(
        queued.iter().any(|(p, body)| p == "stripe" && *body == raw),
        "the raw bytes are queued"
    );
}

#[tokio::test]
async fn one_recorded_batch_may_mix_providers_and_an_id_is_unique_per_provider() {
    // The recorder's group commit takes whatever arrived together, from
    // either route; Stripe's `evt_` ids and Svix's `msg_` ids never meet,
    // but nothing promises that, so the key is (provider, id).
    let env = TestEnv::new().await.unwrap();
    let now = chrono::Utc::now();
    let delivery = |id| NewDelivery {
        delivery_id: id,
        body: b"{}",
        headers: "[]".to_owned(),
        signed_at: now,
        received_at: now,
        verified_by: "test",
    };
    let batch = [
        (Provider::Crossmint, delivery("same_id")),
        (Provider::Stripe, delivery("same_id")),
        (Provider::Stripe, delivery("same_id")),
    ];
    let rows = record::record_mixed(&env.pool, &batch).await.unwrap();
    assert!(rows[0].is_some() && rows[1].is_some(), "{rows:?}");
    assert_ne!(rows[0], rows[1]);
    assert_eq!(
        rows[2], None,
        "the same provider and id twice is a duplicate"
    );
    let providers: Vec<String> =
        sqlx::query_scalar("select provider from webhook_deliveries order by id")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(providers, ["crossmint", "stripe"]);
    assert_eq!(env.count("select count(*) from delivery_outbox").await, 2);
}

#[tokio::test]
async fn a_provider_without_its_secret_answers_404_provider_not_configured() {
    let env = TestEnv::new().await.unwrap();
    let crossmint_only = env
        .start_ingester(&[("STRIPE_WEBHOOK_SECRET", "")])
        .await
        .unwrap();
    let stripe_only = env
        .start_ingester(&[("CROSSMINT_WEBHOOK_SECRET", "")])
        .await
        .unwrap();

    let answer = crossmint_only
        .send_stripe(&stripe_event(&new_event_id()))
        .await;
    assert_eq!(answer.status, 404, "{answer:?}");
    assert_eq!(answer.body["code"], "PROVIDER_NOT_CONFIGURED");
    assert_eq!(
        counted(&crossmint_only, "stripe", "provider_not_configured").await,
        1.0
    );
    let answer = stripe_only
        .send(&payment_succeeded("o-nc", "u", "starter", "10"))
        .await;
    assert_eq!(answer.status, 404, "{answer:?}");
    assert_eq!(answer.body["code"], "PROVIDER_NOT_CONFIGURED");
    assert_eq!(
        counted(&stripe_only, "crossmint", "provider_not_configured").await,
        1.0
    );
    assert_eq!(
        env.count("select count(*) from webhook_deliveries").await,
        0
    );

    // Each still serves the provider it has.
    let served = stripe_only
        .send_stripe(&stripe_event(&new_event_id()))
        .await;
    assert_eq!(served.body["status"], "accepted", "{served:?}");
    let served = crossmint_only
        .send(&payment_succeeded("o-nc", "u", "starter", "10"))
        .await;
    assert_eq!(served.body["status"], "accepted", "{served:?}");
}

// --- Stripe's own library ---------------------------------------------------

/// The venv's python, made on first use.
/// Verifies a header as a Stripe integrator's code would; exits non-zero
/// (SignatureVerificationError) when it does not verify.
const PY_VERIFY: &str = r#"
import sys, stripe
secret, header, path = sys.argv[1:4]
payload = open(path, "rb").read().decode("utf-8")
print(stripe.Webhook.construct_event(payload, header, secret)["id"])
"#;

/// Where the binaries are (the harness's answer).
fn bin_dir() -> PathBuf {
    ledgerhook_tests::harness::processes::bin_dir().expect("the binaries' folder")
}

/// The bodies to try: a small event, and every example payload in
/// tests/payloads/stripe/ (real Stripe shapes, spacing and all).
fn bodies(folder: &Path) -> Vec<(String, PathBuf)> {
    let mut bodies = Vec::new();
    let small = folder.join("small-event.json");
    std::fs::write(&small, event_body(&new_event_id())).unwrap();
    bodies.push(("inline event".to_owned(), small));
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("payloads/stripe");
    if let Ok(entries) = std::fs::read_dir(&examples) {
        let mut files: Vec<PathBuf> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for file in files {
            bodies.push((file.display().to_string(), file));
        }
    }
    bodies
}

#[tokio::test]
async fn signatures_agree_with_stripes_own_python_library_both_ways() {
    let python_path = tokio::task::spawn_blocking(stripe_python);
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let python_path = python_path.await.unwrap();
    let folder = std::env::temp_dir().join(format!("stripe-ingest-{}", new_event_id()));
    std::fs::create_dir_all(&folder).unwrap();

    let bodies = bodies(&folder);
    assert!(
        bodies
            .iter()
            .any(|(name, _)| name.ends_with("checkout.session.completed.json")),
        "the example payloads are tried too: {:?}",
        bodies.iter().map(|(name, _)| name).collect::<Vec<_>>()
    );
    for (name, path) in bodies {
        let body = std::fs::read(&path).unwrap();
        let file = path.to_str().unwrap();

        // Stripe signs, we verify.
        let t = now_secs().to_string();
        let (ok, tag) = python(&python_path, PY_SIGN, &[STRIPE_TEST_SECRET, &t, file]);
        assert!(ok, "{name}: {tag}");
        let header = format!("t={t},v1={tag}");
        let answer = ingester
            .send_stripe_raw(&signature(header.clone()), body.clone())
            .await;
        assert_eq!(answer.status, 200, "{name}: {answer:?}");
        assert_eq!(answer.body["status"], "accepted", "{name}: {answer:?}");

        // We sign (the function and the tool), Stripe verifies.
        let ours = sign_stripe(STRIPE_TEST_SECRET, now_secs(), &body);
        let (ok, said) = python(&python_path, PY_VERIFY, &[STRIPE_TEST_SECRET, &ours, file]);
        assert!(ok, "{name}: Stripe's library refused sign(): {said}");
        let tool = Command::new(bin_dir().join("ledgerhook-sign"))
            .args([
                "--provider",
                "stripe",
                "--url",
                &ingester.stripe_url(),
                file,
            ])
            .env(
                "STRIPE_WEBHOOK_SECRET",
                format!("{STRIPE_TEST_SECRET} {ROLLED_SECRET}"),
            )
            .output()
            .expect("ledgerhook-sign is built (cargo build --workspace --bins)");
        assert!(tool.status.success(), "{tool:?}");
        let curl = String::from_utf8(tool.stdout).unwrap();
        let tool_header = curl
            .split("stripe-signature: ")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .unwrap_or_else(|| panic!("no stripe-signature in {curl}"));
        let (ok, said) = python(
            &python_path,
            PY_VERIFY,
            &[STRIPE_TEST_SECRET, tool_header, file],
        );
        assert!(
            ok,
            "{name}: Stripe's library refused ledgerhook-sign: {said}"
        );

        // And Stripe's check can fail: one digit changed.
        let mut changed = ours.clone();
        let last = changed.pop().unwrap();
        changed.push(if last == '0' { '1' } else { '0' });
        let (ok, said) = python(
            &python_path,
            PY_VERIFY,
            &[STRIPE_TEST_SECRET, &changed, file],
        );
        assert!(
            !ok,
            "{name}: a changed signature passed Stripe's check: {said}"
        );
    }

    // The tool's curl, run as printed, delivers.
    let first = folder.join("for-curl.json");
    std::fs::write(&first, event_body(&new_event_id())).unwrap();
    let tool = Command::new(bin_dir().join("ledgerhook-sign"))
        .args(["--provider", "stripe", "--url", &ingester.stripe_url()])
        .arg(&first)
        .env("STRIPE_WEBHOOK_SECRET", STRIPE_TEST_SECRET)
        .output()
        .unwrap();
    let curl = String::from_utf8(tool.stdout).unwrap();
    let delivered = Command::new("sh").arg("-c").arg(&curl).output().unwrap();
    let answer = String::from_utf8_lossy(&delivered.stdout);
    assert!(
        answer.contains(r#""status":"accepted""#),
        "{curl}\n{answer}"
    );
    std::fs::remove_dir_all(&folder).ok();
    assert!(
        !ingester.service.log().contains(&TEST_SECRET[6..])
            && !ingester.service.log().contains(&STRIPE_TEST_SECRET[6..])
    );
}
