//! The worker's liveness and readiness, served on its metrics port (it has
//! no other): `/healthz` answers while the process runs; `/readyz` answers
//! 200 only while the database answers and the consumer holds a channel,
//! else 503 naming the part that is down. The broker is cut through a
//! forwarder of the test's own, so the shared RabbitMQ keeps running.

use std::net::SocketAddr;
use std::time::Duration;

use ledgerhook_tests::harness::{TestEnv, eventually, seen};
use ledgerhook_tests::severable::Severable;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

async fn probe(metrics_addr: SocketAddr, path: &str) -> Result<(u16, Value), String> {
    let answer = reqwest::get(format!("http://{metrics_addr}{path}"))
        .await
        .map_err(|e| e.to_string())?;
    let status = answer.status().as_u16();
    let body = answer.json().await.map_err(|e| e.to_string())?;
    Ok((status, body))
}

#[tokio::test]
async fn a_consuming_worker_is_live_and_ready_and_not_ready_without_its_broker() {
    // Arrange
    let env = TestEnv::new().await.unwrap();
    let broker = Severable::to("127.0.0.1:5672".parse().unwrap())
        .await
        .unwrap();
    let amqp_url = format!("amqp://guest:guest@{}/%2f", broker.addr);
    let worker = env.start_worker(&[("AMQP_URL", &amqp_url)]).await.unwrap();
    let at = worker.metrics_addr;

    let (status, body) = probe(at, "/healthz").await.unwrap();
    assert_eq!(status, 200, "{body}");
    // Which build it runs, from the start, with its help text.
    let page = worker.metrics().await;
    let info = page
        .lines()
        .find(|line| line.starts_with("ledgerhook_build_info{"))
        .unwrap_or_else(|| panic!("no build info: {page}"));
    assert!(info.contains(r#"service="worker""#), "{info}");
    assert!(info.ends_with(" 1"), "{info}");
    assert!(
        !info.contains(r#"commit="""#) && info.contains("version=\""),
        "{info}"
    );
    assert!(page.contains("# HELP ledgerhook_build_info"), "{page}");
    let ready = eventually(WAIT, async || {
        let answer = probe(at, "/readyz").await?;
        seen(answer.clone(), answer.0 == 200)
    })
    .await;
    assert_eq!(
        ready.1,
        serde_json::json!({"database": true, "broker": true})
    );

    // Act
    broker.sever();

    // Assert
    let not_ready = eventually(WAIT, async || {
        let answer = probe(at, "/readyz").await?;
        seen(answer.clone(), answer.0 == 503)
    })
    .await;
    assert_eq!(
        not_ready.1,
        serde_json::json!({"database": true, "broker": false})
    );
    let (status, _) = probe(at, "/healthz").await.unwrap();
    assert_eq!(status, 200, "still live while not ready");

    // Ready again once the worker has reconnected by itself.
    broker.restore();
    eventually(WAIT, async || {
        let answer = probe(at, "/readyz").await?;
        seen(answer.clone(), answer.0 == 200)
    })
    .await;
}
