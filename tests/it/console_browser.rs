//! The console in a real browser: Debian's Chromium driven by Playwright
//! (PyPI) through tests/browser/console_browser.py, against the real
//! console, ingester and worker binaries. Sign in (the one-time password
//! replaced), find a delivery by its svix-id, read its payload (a
//! `<script>` in it stays text), attempts and grant, reveal it, redrive a
//! parked message, release a held order, see the audit rows; a state change
//! without its CSRF token and a viewer's action refused; no page without a
//! session. `SCREENSHOT_DIR` set: the README's pictures are saved there.

use std::process::Command;
use std::time::Duration;

use ledgerhook_runtime::config::process_env;
use ledgerhook_tests::console::one_time_password;
use ledgerhook_tests::harness::TestEnv;
use ledgerhook_tests::python_venv::venv_with;
use ledgerhook_tests::webhook::{new_delivery_id, payment_succeeded};

const WAIT: Duration = Duration::from_secs(60);
const PLAYWRIGHT: &str = "playwright==1.65.3";
const CHROMIUM: &str = "/usr/bin/chromium";

#[tokio::test]
async fn an_operator_finds_reads_redrives_and_releases_in_chromium() {
    assert!(
        std::path::Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: deploy/test.sh installs Debian's chromium"
    );
    let venv = tokio::task::spawn_blocking(|| venv_with("browser-venv", PLAYWRIGHT))
        .await
        .unwrap();
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let _worker = env
        .start_worker(&[("WORKER_RETRY_ATTEMPTS", "1")])
        .await
        .unwrap();
    let console = env.start_console(&[]).await.unwrap();

    // A paid order whose payload holds a buyer's e-mail and a script.
    env.create_order("browser-paid", "browser-user", "pro")
        .await;
    let paid_id = new_delivery_id();
    let mut paid = payment_succeeded("browser-paid", "browser-user", "pro", "50");
    paid["data"]["payment"]["receiptEmail"] = "ada@example.com".into();
    paid["data"]["note"] = "<script>alert(1)</script>".into();
    assert_eq!(ingester.send_as(&paid_id, &paid).await.status, 200);
    // One paid short (held), one for an order not recorded yet (parked).
    env.create_order("browser-held", "browser-held-user", "pro")
        .await;
    let short = payment_succeeded("browser-held", "browser-held-user", "pro", "10");
    assert_eq!(ingester.send(&short).await.status, 200);
    let mut orphan = payment_succeeded("browser-parked", "ignored", "pro", "50");
    orphan["data"].as_object_mut().unwrap().remove("metadata");
    assert_eq!(ingester.send(&orphan).await.status, 200);
    env.wait_all_processed(3, WAIT).await;
    env.create_order("browser-parked", "browser-parked-user", "pro")
        .await;

    let operator_password = one_time_password(&env, "ops@example", "operator").await;
    let viewer_password = one_time_password(&env, "viewer@example", "viewer").await;
    let url = format!("http://{}", console.http_addr.unwrap());
    let screenshots = process_env("SCREENSHOT_DIR").unwrap_or_default();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/browser/console_browser.py");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(venv.join("bin/python"))
            .arg(script)
            .env("CONSOLE_URL", url)
            .env("OPERATOR_NAME", "ops@example")
            .env("OPERATOR_PASSWORD", operator_password)
            .env("VIEWER_NAME", "viewer@example")
            .env("VIEWER_PASSWORD", viewer_password)
            .env("PAID_DELIVERY_ID", paid_id)
            .env("PAID_EMAIL", "ada@example.com")
            .env("PARKED_ORDER", "browser-parked")
            .env("HELD_ORDER", "browser-held")
            .env("SCREENSHOT_DIR", screenshots)
            .output()
    })
    .await
    .unwrap()
    .expect("running the browser test");
    assert!(
        output.status.success(),
        "the browser test failed:\n{}\n{}\nconsole log:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        console.log()
    );
    // What the clicks did, read from the database.
    assert_eq!(
        env.balance("browser-held-user").await,
        3300,
        "released once"
    );
    assert_eq!(env.balance("browser-parked-user").await, 3300, "redriven");
    assert_eq!(
        env.count("select count(*) from operator_actions where operator = 'ops@example' and command in ('release', 'replay', 'console reveal')")
            .await,
        3
    );
    assert_eq!(
        env.count("select count(*) from processing_control where paused")
            .await,
        0,
        "neither the forged request nor the viewer paused anything"
    );
}
