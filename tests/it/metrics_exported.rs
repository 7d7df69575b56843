//! The alert rules and the dashboard read only what a running stack
//! exports. A whole stack (ingester, worker, API, notifier) starts on its
//! own database and queue prefix and is scraped:
//!
//! 1. fresh, before any traffic: every metric has its HELP text, and every
//!    metric the rules and the dashboard name is already there, counters at
//!    zero (so `increase()` sees the first event), with the exact labels the
//!    rules select on; histograms are the exception, born at their first
//!    observation;
//! 2. after one payment and one confirm: the histograms too, with the
//!    labels the rules select on;
//! 3. RabbitMQ's own metrics, scraped as `deploy/prometheus/prometheus.yml`
//!    scrapes them, name this test's work queue (with its consumer) and
//!    parked queue, as the rules' queue patterns expect.

use std::time::Duration;

use ledgerhook_tests::fake_crossmint::FakeCrossmint;
use ledgerhook_tests::harness::{Service, TestEnv, eventually, seen};
use ledgerhook_tests::scrape::{self, Selector};
use ledgerhook_tests::webhook::{payment_succeeded, price_of};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
/// The stack scraped, in this order.
const SERVICES: [&str; 4] = ["ingester", "worker", "api", "notifier"];
const RULES: &str = include_str!("../../deploy/prometheus/alerts.yml");
const DASHBOARD: &str = include_str!("../../deploy/grafana/ledgerhook.json");
const SCRAPE_CONFIG: &str = include_str!("../../deploy/prometheus/prometheus.yml");
/// rabbitmq_prometheus's port (deploy/services.sh enables the plugin).
const RABBITMQ_METRICS: &str = "http://127.0.0.1:15692";

/// What the rules and the dashboard select, by metric prefix.
fn selected(prefix: &str) -> Vec<Selector> {
    // The rules file's text without its comments (which name the plugin).
    let rules: Vec<&str> = RULES
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .collect();
    let mut exprs = vec![rules.join("\n")];
    let dashboard: Value = serde_json::from_str(DASHBOARD).unwrap();
    collect_exprs(&dashboard, &mut exprs);
    let mut all: Vec<Selector> = exprs
        .iter()
        .flat_map(|text| scrape::selectors(text, &[prefix]))
        .collect();
    all.sort();
    all.dedup();
    all
}

fn collect_exprs(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match inner {
                    Value::String(expr) if key == "expr" => into.push(expr.clone()),
                    _ => collect_exprs(inner, into),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_exprs(item, into)),
        _ => {}
    }
}

/// The services' pages, in [`SERVICES`]' order, once together they hold
/// every one of `wanted`; `when` names the moment in the failure.
async fn exported(services: &[&Service], wanted: &[Selector], when: &str) -> Vec<String> {
    eventually(WAIT, async || {
        let mut pages = Vec::new();
        for service in services {
            pages.push(service.metrics().await);
        }
        let absent: Vec<String> = missing(wanted, &pages)
            .iter()
            .map(ToString::to_string)
            .collect();
        seen(pages, absent.is_empty()).map_err(|_| format!("not exported {when}: {absent:?}"))
    })
    .await
}

/// Every metric on every page has its HELP text, and each page names its
/// service in `ledgerhook_build_info`.
fn assert_described(pages: &[String]) {
    for (service, page) in SERVICES.iter().zip(pages) {
        let undescribed = scrape::undescribed(page);
        assert!(
            undescribed.is_empty(),
            "{service} exports metrics without HELP: {undescribed:?}"
        );
        assert!(page.contains(&format!(r#"service="{service}""#)), "{page}");
    }
}

/// Those of `wanted` that no page holds.
fn missing<'a>(wanted: &'a [Selector], pages: &[String]) -> Vec<&'a Selector> {
    wanted
        .iter()
        .filter(|selector| !pages.iter().any(|page| scrape::has_series(page, selector)))
        .collect()
}

#[tokio::test]
async fn every_metric_the_rules_and_dashboard_read_is_exported_by_a_running_stack() {
    let wanted = selected("ledgerhook_");
    assert!(
        wanted.len() > 20,
        "the rules name too few metrics: {wanted:?}"
    );
    let (histograms, others): (Vec<Selector>, Vec<Selector>) = wanted
        .into_iter()
        .partition(|selector| selector.name.ends_with("_bucket"));

    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let worker = env.start_worker(&[]).await.unwrap();
    let api = env.start_api(&crossmint.api_url, &[]).await.unwrap();
    let notifier = env.start_notifier(&[]).await.unwrap();
    let services = [&ingester.service, &worker, &api.service, &notifier];

    // 1. Fresh. The gauges read from the database are set by each
    //    process's first look, a moment after start.
    let fresh = exported(&services, &others, "before traffic").await;
    assert_described(&fresh);
    // Counters start at zero: nothing has happened yet.
    let payments = scrape::sum(&fresh[1], "ledgerhook_payments_total", &[]);
    assert_eq!(payments, 0.0);

    // 2. One payment through the whole path, and one confirm.
    let created = api
        .post(
            "/api/payments/orders",
            Some("metrics-user"),
            &json!({"packageId": "vip"}),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let order_id = created.body["orderId"].as_str().unwrap().to_owned();
    let paid = payment_succeeded(&order_id, "metrics-user", "vip", &price_of("vip"));
    assert_eq!(ingester.send(&paid).await.status, 200);
    env.wait_all_processed(1, WAIT).await;
    let confirmed = api
        .post(
            "/api/payments/confirm",
            Some("metrics-user"),
            &json!({"orderId": order_id}),
        )
        .await;
    assert_eq!(confirmed.body["status"], "completed", "{confirmed:?}");

    let everything: Vec<Selector> = histograms.iter().chain(&others).cloned().collect();
    let after = exported(&services, &everything, "after traffic").await;
    assert_described(&after);
    assert_eq!(
        scrape::sum(
            &after[1],
            "ledgerhook_payments_total",
            &[r#"result="succeeded""#]
        ),
        1.0
    );

    // 3. RabbitMQ's own, as Prometheus is configured to scrape it.
    let families: Vec<&str> = SCRAPE_CONFIG
        .lines()
        .find_map(|line| line.trim().strip_prefix("family: "))
        .expect("prometheus.yml asks rabbitmq_prometheus for its queue families")
        .trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .map(str::trim)
        .collect();
    let query: Vec<String> = families.iter().map(|f| format!("family={f}")).collect();
    let url = format!("{RABBITMQ_METRICS}/metrics/detailed?{}", query.join("&"));
    let rabbit = selected("rabbitmq_");
    assert!(!rabbit.is_empty());
    let queue = |suffix: &str| format!("{}.{suffix}", env.queue_prefix);
    let work_queue_consumers = format!("queue=\"{}\"", queue("deliveries"));
    // The rules' queue patterns (`.+[.]deliveries`, `.+[.]parked`) match
    // this test's queues.
    let queues = [
        ("rabbitmq_detailed_queue_messages_ready", "deliveries"),
        ("rabbitmq_detailed_queue_messages", "parked"),
    ]
    .map(|(metric, suffix)| Selector {
        name: metric.to_owned(),
        equal: vec![("queue".to_owned(), queue(suffix))],
    });
    // The plugin reports queues as its statistics are collected (every 5 s
    // by default), so a queue a second old may not be there yet.
    let broker_page = eventually(WAIT, async || {
        let page = reqwest::get(&url)
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("{url}: {e} (deploy/services.sh enables rabbitmq_prometheus)"))?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        let consumers = scrape::sum(
            &page,
            "rabbitmq_detailed_queue_consumers",
            &[&work_queue_consumers],
        );
        let queues_absent: Vec<String> = missing(&queues, std::slice::from_ref(&page))
            .iter()
            .map(ToString::to_string)
            .collect();
        seen(page, consumers >= 1.0 && queues_absent.is_empty()).map_err(|page| {
            format!("no consumer on {work_queue_consumers}, or no {queues_absent:?}: {page}")
        })
    })
    .await;
    let absent = missing(&rabbit, std::slice::from_ref(&broker_page));
    assert!(absent.is_empty(), "RabbitMQ does not export {absent:?}");
}
