//! Ids through every hop: a delivery's log lines carry its delivery id from
//! the ingester's request to the worker's grant, the response's
//! `x-request-id` finds the ingester's lines, and a client's request id is
//! kept only when it is a short plain token.
//!
//! Logs are read as JSON lines (`LOG_FORMAT=json`), where `spans` lists the
//! line's spans, outermost first, each with its fields.

use std::time::Duration;

use ledgerhook_runtime::http::layers::{MAX_CLIENT_REQUEST_ID, REQUEST_SPAN};
use ledgerhook_tests::fake_crossmint::FakeCrossmint;
use ledgerhook_tests::harness::{Service, TestEnv, eventually, seen};
use ledgerhook_tests::webhook::{new_delivery_id, payment_succeeded, price_of};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);
/// Debug for our crates and for each SQL statement, so that the lines of
/// the tasks a request or a message hands work to show up too.
const INGESTER_LOG: &str = "info,ledgerhook_ingester=debug,ledgerhook_store=debug,ledgerhook_runtime=debug,sqlx::query=debug";
const WORKER_LOG: &str = "info,ledgerhook_worker=debug,ledgerhook_store=debug,ledgerhook_runtime=debug,sqlx::query=debug";

/// Every line of a service's log, parsed; all of them must be JSON.
fn json_lines(service: &Service) -> Vec<Value> {
    service
        .log()
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"))
        })
        .collect()
}

fn spans(line: &Value) -> &[Value] {
    line["spans"].as_array().map_or(&[], Vec::as_slice)
}

/// The value of `field` in any of the line's spans.
fn span_field<'a>(line: &'a Value, field: &str) -> Option<&'a str> {
    spans(line).iter().find_map(|span| span[field].as_str())
}

/// Whether one of the line's spans is about this delivery: a message's span
/// (`delivery_id`) or the span of a batch that holds it (`delivery_ids`,
/// comma-separated).
fn names_delivery(line: &Value, id: &str) -> bool {
    span_field(line, "delivery_id") == Some(id)
        || span_field(line, "delivery_ids").is_some_and(|ids| ids.split(',').any(|i| i == id))
}

/// The line's `http_request` span, if it has one.
fn request_span(line: &Value) -> Option<&Value> {
    spans(line).iter().find(|span| span["name"] == REQUEST_SPAN)
}

fn message(line: &Value) -> &str {
    line["fields"]["message"].as_str().unwrap_or_default()
}

fn target(line: &Value) -> &str {
    line["target"].as_str().unwrap_or_default()
}

fn is_uuid_v7(text: &str) -> bool {
    uuid::Uuid::parse_str(text).is_ok_and(|id| id.get_version_num() == 7)
}

fn show(lines: &[&Value]) -> String {
    lines
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// One signed delivery through a fresh ingester and worker, both logging
/// JSON, until it is granted.
struct Delivered {
    _env: TestEnv,
    delivery_id: String,
    request_id: String,
    ingester: Vec<Value>,
    worker: Vec<Value>,
}

async fn deliver_one() -> Delivered {
    let env = TestEnv::new().await.unwrap();
    let ingester = env
        .start_ingester(&[("LOG_FORMAT", "json"), ("RUST_LOG", INGESTER_LOG)])
        .await
        .unwrap();
    let worker = env
        .start_worker(&[
            ("LOG_FORMAT", "json"),
            ("RUST_LOG", WORKER_LOG),
            // Nothing but the message in the worker's log: no expiry runs.
            ("CREDIT_EXPIRY_INTERVAL_SECS", "0"),
        ])
        .await
        .unwrap();

    let delivery_id = new_delivery_id();
    let body = payment_succeeded("cm-log-1", "user-log-1", "starter", &price_of("starter"));
    let answer = ingester.send_as(&delivery_id, &body).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let request_id = answer
        .header("x-request-id")
        .unwrap_or_else(|| panic!("no x-request-id on the answer: {answer:?}"))
        .to_owned();
    assert!(is_uuid_v7(&request_id), "{request_id:?}");

    env.wait_all_processed(1, WAIT).await;
    assert_eq!(env.balance("user-log-1").await, 500);
    // The access line is written once the answer is on its way, and the
    // worker logs its commit after the rows are visible: wait for both.
    access_line(&ingester.service, &request_id).await;
    eventually(WAIT, async || {
        let commits = json_lines(&worker)
            .iter()
            .filter(|line| {
                line["fields"]["summary"] == "COMMIT" && names_delivery(line, &delivery_id)
            })
            .count();
        seen(commits, commits > 0)
    })
    .await;
    Delivered {
        delivery_id,
        request_id,
        ingester: json_lines(&ingester.service),
        worker: json_lines(&worker),
        _env: env,
    }
}

#[tokio::test]
async fn the_ingesters_lines_for_a_delivery_carry_its_request_id_and_delivery_id() {
    let d = deliver_one().await;

    // The lines of its request: every one carries the delivery id, down to
    // the SQL of the recorder's task that wrote it.
    let in_request: Vec<&Value> = d
        .ingester
        .iter()
        .filter(|line| {
            request_span(line).is_some_and(|span| span["request_id"] == d.request_id.as_str())
        })
        .collect();
    for line in &in_request {
        let span = request_span(line).unwrap();
        assert_eq!(
            span["delivery_id"],
            d.delivery_id.as_str(),
            "a line of the request without its delivery id: {line}\nall of them:\n{}",
            show(&in_request)
        );
        assert_eq!(span["route"], "/webhooks/crossmint", "{line}");
        assert_eq!(span["method"], "POST", "{line}");
    }
    let answered: Vec<&&Value> = in_request
        .iter()
        .filter(|line| message(line) == "request answered")
        .collect();
    assert_eq!(answered.len(), 1, "{}", show(&in_request));
    assert_eq!(answered[0]["fields"]["status"], 200, "{}", answered[0]);
    assert!(
        in_request.iter().any(|line| target(line) == "sqlx::query"
            && line["fields"].to_string().contains("webhook_deliveries")),
        "the recorder's statement is not logged in the request's span:\n{}",
        show(&in_request)
    );

    // And no line names the delivery outside that request.
    let elsewhere: Vec<&Value> = d
        .ingester
        .iter()
        .filter(|line| line.to_string().contains(&d.delivery_id))
        .filter(|line| {
            request_span(line).is_none_or(|span| span["request_id"] != d.request_id.as_str())
        })
        .collect();
    assert!(elsewhere.is_empty(), "{}", show(&elsewhere));
}

/// The worker's side. It logs nothing of its own for a message that simply
/// grants, so this reads its debug lines (SQL included): every line our
/// crates or sqlx wrote from the start of consuming to the grant (the only
/// message in this world, and no expiry runs) must carry the delivery id.
#[tokio::test]
async fn the_workers_lines_for_a_message_carry_its_delivery_id() {
    let d = deliver_one().await;

    let consuming = d
        .worker
        .iter()
        .position(|line| message(line) == "consuming")
        .expect("the worker logs that it is consuming");
    let processing: Vec<&Value> = d.worker[consuming + 1..]
        .iter()
        .filter(|line| target(line).starts_with("ledgerhook_") || target(line) == "sqlx::query")
        // The pause switch's poll (every 500 ms, its own task) belongs to no
        // message: it may fall anywhere in the window.
        .filter(|line| {
            !line["fields"]["db.statement"]
                .as_str()
                .is_some_and(|sql| sql.contains("from processing_control"))
        })
        .collect();
    assert!(
        !processing.is_empty(),
        "the worker logged nothing while processing the message"
    );
    let without: Vec<&&Value> = processing
        .iter()
        .filter(|line| !names_delivery(line, &d.delivery_id))
        .collect();
    assert!(
        without.is_empty(),
        "{} of the worker's {} lines for the message lack its delivery id {:?}:\n{}",
        without.len(),
        processing.len(),
        d.delivery_id,
        show(&without.into_iter().copied().collect::<Vec<_>>())
    );
}

/// What a client sends as `x-request-id`, and what comes back.
async fn request_id_answered(url: &str, sent: &[&str]) -> String {
    let mut request = reqwest::Client::new().get(url);
    for id in sent {
        request = request.header("x-request-id", *id);
    }
    let response = request.send().await.expect("the server answers");
    assert!(response.status().is_success(), "{response:?}");
    let ids: Vec<String> = response
        .headers()
        .get_all("x-request-id")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "{url} with {sent:?}: {ids:?}");
    ids.into_iter().next().unwrap()
}

/// A short plain token is kept (a proxy's id ties its logs to ours);
/// anything else from the client is replaced by a UUID v7 of our own.
async fn assert_request_id_policy(url: &str) {
    let plain = "edge-01HZX3.req_42";
    assert_eq!(request_id_answered(url, &[plain]).await, plain);
    let longest = "r".repeat(MAX_CLIENT_REQUEST_ID);
    assert_eq!(request_id_answered(url, &[&longest]).await, longest);

    let too_long = "r".repeat(MAX_CLIENT_REQUEST_ID + 1);
    for sent in [
        vec![],
        vec![too_long.as_str()],
        vec!["two words"],
        vec!["{\"forged\":\"field\"}"],
        vec!["a=b;c"],
        vec!["first", "second"],
        vec![""],
    ] {
        let answered = request_id_answered(url, &sent).await;
        assert!(is_uuid_v7(&answered), "{url} with {sent:?}: {answered:?}");
        assert!(!sent.contains(&answered.as_str()), "{sent:?}");
    }
    let (a, b) = (
        request_id_answered(url, &[]).await,
        request_id_answered(url, &[]).await,
    );
    assert_ne!(a, b, "each request gets its own id");
}

/// The access line of the request with this id, from a service's log.
/// The one access line of a request, once it is in the log (it is written
/// as the answer leaves, so it may trail the answer by a moment).
async fn access_line(service: &Service, request_id: &str) -> Value {
    eventually(WAIT, async || {
        let found: Vec<Value> = json_lines(service)
            .into_iter()
            .filter(|line| {
                message(line) == "request answered"
                    && request_span(line).is_some_and(|span| span["request_id"] == request_id)
            })
            .collect();
        match found.as_slice() {
            [only] => Ok(only.clone()),
            _ => Err(format!("access lines for {request_id}: {found:?}")),
        }
    })
    .await
}

#[tokio::test]
async fn both_servers_answer_with_a_request_id_and_log_it() {
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let ingester = env.start_ingester(&[("LOG_FORMAT", "json")]).await.unwrap();
    let api = env
        .start_api(&crossmint.api_url, &[("LOG_FORMAT", "json")])
        .await
        .unwrap();

    let ingester_health = format!("{}/healthz", ingester.base);
    let api_health = format!("{}/healthz", api.base);
    assert_request_id_policy(&ingester_health).await;
    assert_request_id_policy(&api_health).await;

    let ours = request_id_answered(&ingester_health, &[]).await;
    let kept = request_id_answered(&api_health, &["from-the-proxy-7"]).await;
    let line = access_line(&ingester.service, &ours).await;
    assert_eq!(line["fields"]["status"], 200, "{line}");
    assert_eq!(request_span(&line).unwrap()["route"], "/healthz", "{line}");
    assert_eq!(request_span(&line).unwrap()["method"], "GET", "{line}");
    assert!(line["fields"]["latency_ms"].is_number(), "{line}");
    let line = access_line(&api.service, &kept).await;
    assert_eq!(line["fields"]["status"], 200, "{line}");

    // Unknown paths are answered, identified and logged as `unmatched`.
    let response = reqwest::get(format!("{}/nowhere", api.base)).await.unwrap();
    assert_eq!(response.status(), 404);
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(is_uuid_v7(&id), "{id:?}");
    let line = access_line(&api.service, &id).await;
    assert_eq!(request_span(&line).unwrap()["route"], "unmatched", "{line}");
    assert_eq!(line["fields"]["status"], 404, "{line}");
}
