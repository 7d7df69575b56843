//! An alert reaches someone, end to end: real ingester and worker on their
//! own database and queue prefix → Prometheus (Debian's, scraping them
//! every second, evaluating `deploy/prometheus/alerts.yml` as it is) →
//! Alertmanager (Debian's, running `deploy/compose/alertmanager.yml` with
//! two substitutions, below) → a webhook receiver in this test.
//!
//! The condition is real: a payment whose amount is not the package's
//! price, which the worker holds for review and counts in
//! `ledgerhook_order_conflicts_total`, firing `LedgerhookOrderConflict`
//! (no `for:`, so it fires on the first evaluation that sees it).
//! `increase()` needs two samples of the counter, so the test first waits
//! until Prometheus holds the counter's zero, which the worker exports
//! before any conflict: a counter born at its first event would never fire
//! the alert, and this test would fail.
//!
//! The substitutions in the Alertmanager file (each must match exactly
//! once, so an edit to the file that breaks them fails here, not silently):
//! the receiver's URL (`http://alert-receiver.invalid:8080/ledgerhook`)
//! becomes this test's receiver, and `group_wait: 30s` becomes 1 s, so the
//! first notification leaves at once. Everything else (route, grouping,
//! `send_resolved`) is the shipped file.

use std::time::{Duration, Instant};

use ledgerhook_tests::alert_receiver::AlertReceiver;
use ledgerhook_tests::harness::{TestEnv, eventually, seen};
use ledgerhook_tests::monitoring::{Daemon, start_alertmanager, start_prometheus};
use ledgerhook_tests::webhook::payment_succeeded;
use serde_json::Value;

const ALERTMANAGER_CONFIG: &str = include_str!("../../deploy/compose/alertmanager.yml");
const RULES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../deploy/prometheus/alerts.yml"
);
const ALERT: &str = "LedgerhookOrderConflict";
/// Scrapes and evaluations are every second; this is for a loaded machine.
const WAIT: Duration = Duration::from_secs(60);

/// `text` with `from` replaced by `to`, which must occur exactly once.
fn substitute(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "deploy/compose/alertmanager.yml should hold `{from}` once"
    );
    text.replace(from, to)
}

/// The value of the instant query `query` (one series expected), once
/// Prometheus has it.
async fn sample(prometheus: &Daemon, query: &str) -> String {
    let path = format!("/api/v1/query?query={query}");
    eventually(WAIT, async || {
        let answer = prometheus
            .get_json(&path)
            .await
            .map_err(|e| format!("{e:#}"))?;
        let value = answer["data"]["result"][0]["value"][1].as_str();
        seen(answer.clone(), value.is_some()).map(|_| value.unwrap_or_default().to_owned())
    })
    .await
}

/// The alerts named [`ALERT`] in every notification `receiver` holds.
fn received(receiver: &AlertReceiver) -> Vec<(String, Value)> {
    receiver
        .notifications()
        .into_iter()
        .flat_map(|notification| {
            let status = notification["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let alerts = notification["alerts"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            alerts.into_iter().map(move |alert| (status.clone(), alert))
        })
        .filter(|(_, alert)| alert["labels"]["alertname"] == ALERT)
        .collect()
}

#[tokio::test]
async fn an_order_conflict_reaches_the_teams_webhook_through_prometheus_and_alertmanager() {
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let worker = env.start_worker(&[]).await.unwrap();
    let receiver = AlertReceiver::start().await.unwrap();
    let config = substitute(
        ALERTMANAGER_CONFIG,
        "http://alert-receiver.invalid:8080/ledgerhook",
        &receiver.url(),
    );
    let config = substitute(&config, "group_wait: 30s", "group_wait: 1s");
    let alertmanager = start_alertmanager(config).await.unwrap();
    let prometheus = start_prometheus(
        RULES.as_ref(),
        &[
            ("ledgerhook-ingester", ingester.service.metrics_addr),
            ("ledgerhook-worker", worker.metrics_addr),
        ],
        alertmanager.addr,
    )
    .await
    .unwrap();

    // Prometheus holds the counter's zero, and the rule is loaded and quiet.
    let zero = sample(&prometheus, "ledgerhook_order_conflicts_total").await;
    assert_eq!(zero, "0");
    let rules = prometheus.get_json("/api/v1/rules").await.unwrap();
    assert!(
        rules.to_string().contains(&format!("\"name\":\"{ALERT}\"")),
        "Prometheus did not load {ALERT} from {RULES}: {rules}"
    );
    let alerts = prometheus.get_json("/api/v1/alerts").await.unwrap();
    assert!(!alerts.to_string().contains(ALERT), "{alerts}");

    // A starter package (10 USDT) paid with 9: held for review.
    let started = Instant::now();
    let paid = payment_succeeded("alert-order", "alert-user", "starter", "9");
    assert_eq!(ingester.send(&paid).await.status, 200);
    env.wait_for_count(
        "select count(*) from webhook_deliveries where outcome = 'conflict'",
        1,
        WAIT,
    )
    .await;

    let alerts = eventually(WAIT, async || {
        let alerts = received(&receiver);
        if !alerts.is_empty() {
            return Ok(alerts);
        }
        let firing = prometheus.get_json("/api/v1/alerts").await;
        Err(format!(
            "no {ALERT} notification yet; received {:?}; Prometheus's alerts: {firing:?}",
            receiver.notifications()
        ))
    })
    .await;
    eprintln!(
        "{ALERT} reached the receiver {:.1} s after the payment",
        started.elapsed().as_secs_f64()
    );
    let (status, alert) = &alerts[0];
    assert_eq!(status, "firing", "{alert}");
    assert_eq!(alert["labels"]["severity"], "critical", "{alert}");
    assert_eq!(
        alert["annotations"]["runbook_url"],
        "README.md#everyday-tasks"
    );
    assert!(
        alert["generatorURL"]
            .as_str()
            .is_some_and(|url| url.contains(&format!(":{}/", prometheus.addr.port()))),
        "the alert came from this test's Prometheus: {alert}"
    );
}
