//! Schemathesis against the running API: every documented operation fuzzed
//! from `/api/openapi.json`, with a valid token; no server error, and every
//! answer as documented (status, content type, schema).
//!
//! Schemathesis runs from a virtualenv of its own under `target/`, made on
//! first use (`python3 -m venv`, `pip install schemathesis==<pinned>`).

use std::path::PathBuf;
use std::process::Command;

use ledgerhook_tests::api_client::token_for;
use ledgerhook_tests::fake_crossmint::FakeCrossmint;
use ledgerhook_tests::harness::TestEnv;
use ledgerhook_tests::python_venv;
use ledgerhook_tests::webhook::payment_succeeded;
use serde_json::json;

const SCHEMATHESIS: &str = "schemathesis==4.32.5";

/// The `st` of the project's virtualenv, made if missing.
fn schemathesis() -> PathBuf {
    python_venv::venv_with("schemathesis-venv", SCHEMATHESIS).join("bin/st")
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_undocumented_answer() {
    let st = tokio::task::spawn_blocking(schemathesis).await.unwrap();
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    // Limits out of the way, so the fuzzing reaches what lies behind them
    // (api_orders tests the limits themselves).
    let api = env
        .start_api(
            &crossmint.api_url,
            &[
                ("ORDER_RATE_LIMIT_PER_MINUTE", "1000000"),
                ("ORDER_RATE_LIMIT_GLOBAL_PER_MINUTE", "1000000"),
                ("MAX_PENDING_ORDERS_PER_USER", "1000000"),
            ],
        )
        .await
        .unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let _worker = env.start_worker(&[]).await.unwrap();

    // Something to find: the fuzzing user owns a paid order and credits.
    let user = "schemathesis-user";
    let created = api
        .post(
            "/api/payments/orders",
            Some(user),
            &json!({"packageId": "vip"}),
        )
        .await;
    let order_id = created.body["orderId"].as_str().unwrap().to_owned();
    assert_eq!(
        ingester
            .send(&payment_succeeded(&order_id, user, "vip", "100"))
            .await
            .status,
        200
    );
    env.wait_all_processed(1, std::time::Duration::from_secs(60))
        .await;

    let schema = format!("{}/api/openapi.json", api.base);
    let authorization = format!("Authorization: Bearer {}", token_for(user));
    let base = api.base.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(st)
            .args(["run", &schema, "--url", &base, "-H", &authorization])
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
                "--phases",
                "examples,coverage,fuzzing",
                "--max-examples",
                "25",
                "--seed",
                "1",
                "--no-color",
            ])
            .output()
            .expect("running schemathesis")
    })
    .await
    .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // The summary is worth seeing in the test output (`--nocapture`).
    eprintln!("{report}");
    assert!(output.status.success(), "schemathesis failed:\n{report}");
    assert!(
        report.contains("12 selected"),
        "every operation was tested:\n{report}"
    );
    assert!(
        !api.service.log().contains("internal error"),
        "no internal error was logged:\n{}",
        api.service.log()
    );
}
