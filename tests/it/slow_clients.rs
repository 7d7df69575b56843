//! Clients that are slow on purpose: headers a byte at a time, a body that
//! stops, a kept-alive connection left idle, more connections than allowed.
//! Each is cut at its bound with a 408 or 503 the client can read, counted
//! in `ledgerhook_http_connections_cut_total{reason}`, while honest senders
//! are served. The slow clients are raw TCP sockets, since an HTTP client
//! library will not misbehave this way.
//!
//! The bounds are set short (hundreds of milliseconds) so the file runs in
//! seconds; the sleeps here are the slowness under test, never a way to wait
//! for work.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ledgerhook_tests::api_client::token_for;
use ledgerhook_tests::fake_crossmint::FakeCrossmint;
use ledgerhook_tests::harness::{Ingester, TestEnv, eventually, seen};
use ledgerhook_tests::scrape;
use ledgerhook_tests::webhook::{new_delivery_id, payment_succeeded, svix_headers, test_secret};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::task::JoinHandle;

const CUT: &str = "ledgerhook_http_connections_cut_total";
/// How much later than its bound a cut may come on a busy machine.
const SLACK: Duration = Duration::from_secs(2);

fn cuts(metrics: &str, reason: &str) -> f64 {
    scrape::sum(metrics, CUT, &[&format!("reason=\"{reason}\"")])
}

fn millis(duration: Duration) -> String {
    duration.as_millis().to_string()
}

/// One HTTP/1.1 response as it came off the socket.
#[derive(Debug)]
struct RawResponse {
    status: u16,
    /// The status line and headers, lower-cased.
    head: String,
    body: Value,
}

impl RawResponse {
    fn parse(bytes: &[u8]) -> Option<Self> {
        let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
        let status = head.split_whitespace().nth(1)?.parse().ok()?;
        let body = &bytes[end + 4..];
        let body = serde_json::from_slice(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
        Some(Self { status, head, body })
    }

    fn has_header(&self, line: &str) -> bool {
        self.head.lines().any(|l| l.trim() == line)
    }
}

/// The bytes of one response (headers and `content-length` bytes of body),
/// or `None` if the connection ends or `within` passes first.
async fn read_response(
    stream: &mut (impl AsyncRead + Unpin),
    within: Duration,
) -> Option<RawResponse> {
    let mut bytes = Vec::new();
    let read = async {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if bytes.len() >= end + 4 + length {
                    return RawResponse::parse(&bytes);
                }
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(within, read).await.ok().flatten()
}

/// Everything the server sends until it closes the connection, and when it
/// closed; `None` if it was still open after `within`. A reset after the
/// server's last bytes counts as closed: a server that closes with our
/// unread bytes in its buffer resets.
async fn read_until_closed(
    stream: &mut (impl AsyncRead + Unpin),
    within: Duration,
) -> Option<(Vec<u8>, Instant)> {
    let mut bytes = Vec::new();
    let read = async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return Instant::now(),
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            }
        }
    };
    let closed_at = tokio::time::timeout(within, read).await.ok()?;
    Some((bytes, closed_at))
}

async fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).await.expect("connecting");
    stream.set_nodelay(true).expect("setting nodelay");
    stream
}

/// Writes `bytes` one at a time, `every` apart, until done or the server
/// closes.
fn dribble(mut writer: OwnedWriteHalf, bytes: Vec<u8>, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        for byte in bytes {
            if writer.write_all(&[byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(every).await;
        }
        // Keep the write side open: dropping it would send FIN.
        std::future::pending::<()>().await;
    })
}

/// A request head that never ends: one header line far longer than the
/// test lasts at a byte per 100 ms.
fn endless_head(path: &str) -> Vec<u8> {
    let mut head = format!("POST {path} HTTP/1.1\r\nhost: ledgerhook\r\nx-slow: ").into_bytes();
    head.extend(std::iter::repeat_n(b'a', 10_000));
    head
}

/// Signed headers of a webhook whose body is `body`, as a request head.
fn signed_head(body: &[u8]) -> Vec<u8> {
    let mut head = format!(
        "POST /webhooks/crossmint HTTP/1.1\r\nhost: ledgerhook\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in svix_headers(&test_secret(), &new_delivery_id(), body) {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

fn http_addr(ingester: &Ingester) -> SocketAddr {
    ingester.service.http_addr.expect("the ingester's address")
}

#[tokio::test]
async fn headers_sent_a_byte_at_a_time_are_cut_with_408_at_the_header_timeout_while_honest_deliveries_are_served()
 {
    let header_timeout = Duration::from_millis(1000);
    let env = TestEnv::new().await.unwrap();
    let ingester = env
        .start_ingester(&[("HTTP_HEADER_TIMEOUT_MS", &millis(header_timeout))])
        .await
        .unwrap();

    let connected_at = Instant::now();
    let (mut reader, writer) = connect(http_addr(&ingester)).await.into_split();
    let attack = dribble(
        writer,
        endless_head("/webhooks/crossmint"),
        Duration::from_millis(100),
    );

    // During the attack, an honest delivery is answered at once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let honest = ingester
        .send(&payment_succeeded("o-honest", "u-honest", "starter", "10"))
        .await;
    let took = started.elapsed();
    assert_eq!(honest.status, 200, "{honest:?}");
    assert!(
        took < Duration::from_secs(1),
        "an honest delivery took {took:?} during the attack"
    );
    assert_eq!(
        env.count("select count(*) from webhook_deliveries").await,
        1,
        "the honest delivery is recorded"
    );

    let (bytes, closed_at) = read_until_closed(&mut reader, header_timeout + SLACK)
        .await
        .expect("the slow client is cut within the header timeout and slack");
    attack.abort();
    let lasted = closed_at - connected_at;
    assert!(
        lasted >= header_timeout - Duration::from_millis(100),
        "cut after {lasted:?}, before the header timeout"
    );
    let answer = RawResponse::parse(&bytes).unwrap_or_else(|| {
        panic!(
            "a readable response before the close: {:?}",
            String::from_utf8_lossy(&bytes)
        )
    });
    assert_eq!(answer.status, 408, "{answer:?}");
    assert_eq!(answer.body["code"], "REQUEST_TIMEOUT", "{answer:?}");

    let metrics = ingester.service.metrics().await;
    assert_eq!(cuts(&metrics, "header_timeout"), 1.0, "{metrics}");
}

#[tokio::test]
async fn a_body_that_stops_is_answered_408_at_the_body_timeout_and_nothing_is_recorded() {
    let body_timeout = Duration::from_millis(1000);
    let env = TestEnv::new().await.unwrap();
    let ingester = env
        .start_ingester(&[("HTTP_BODY_TIMEOUT_MS", &millis(body_timeout))])
        .await
        .unwrap();

    // Signed for all 100 000 bytes, so the ingester reads on; ten arrive.
    let body = vec![b' '; 100_000];
    let mut stream = connect(http_addr(&ingester)).await;
    stream.write_all(&signed_head(&body)).await.unwrap();
    let sent_at = Instant::now();
    stream.write_all(&body[..10]).await.unwrap();

    let answer = read_response(&mut stream, body_timeout + SLACK)
        .await
        .expect("an answer within the body timeout and slack");
    let took = sent_at.elapsed();
    assert_eq!(answer.status, 408, "{answer:?}");
    assert_eq!(answer.body["code"], "REQUEST_TIMEOUT", "{answer:?}");
    assert!(answer.has_header("connection: close"), "{answer:?}");
    assert!(
        took >= body_timeout - Duration::from_millis(100),
        "answered after {took:?}, before the body timeout"
    );
    assert!(
        read_until_closed(&mut stream, SLACK).await.is_some(),
        "the connection is closed after the 408"
    );

    let metrics = ingester.service.metrics().await;
    assert_eq!(cuts(&metrics, "body_timeout"), 1.0, "{metrics}");
    assert_eq!(
        scrape::sum(
            &metrics,
            "ledgerhook_webhook_deliveries_total",
            &["outcome=\"request_timeout\""]
        ),
        1.0,
        "{metrics}"
    );
    assert_eq!(
        env.count("select count(*) from webhook_deliveries").await,
        0,
        "nothing recorded"
    );
}

#[tokio::test]
async fn a_kept_alive_connection_outlives_the_header_timeout_and_is_closed_at_the_idle_timeout() {
    let header_timeout = Duration::from_millis(600);
    let idle_timeout = Duration::from_millis(2000);
    let env = TestEnv::new().await.unwrap();
    let ingester = env
        .start_ingester(&[
            ("HTTP_HEADER_TIMEOUT_MS", &millis(header_timeout)),
            ("HTTP_IDLE_TIMEOUT_MS", &millis(idle_timeout)),
        ])
        .await
        .unwrap();
    let health = b"GET /healthz HTTP/1.1\r\nhost: ledgerhook\r\n\r\n";

    let mut stream = connect(http_addr(&ingester)).await;
    stream.write_all(health).await.unwrap();
    let first = read_response(&mut stream, SLACK).await.expect("an answer");
    assert_eq!(first.status, 200, "{first:?}");

    // Idle for longer than the header timeout: the idle bound applies.
    tokio::time::sleep(header_timeout * 3 / 2).await;
    stream.write_all(health).await.unwrap();
    let second = read_response(&mut stream, SLACK)
        .await
        .expect("the kept-alive connection still answers after the header timeout");
    assert_eq!(second.status, 200, "{second:?}");
    let answered_at = Instant::now();

    let (bytes, closed_at) = read_until_closed(&mut stream, idle_timeout + SLACK)
        .await
        .expect("the idle connection is closed within the idle timeout and slack");
    let idle = closed_at - answered_at;
    assert!(bytes.is_empty(), "{:?}", String::from_utf8_lossy(&bytes));
    assert!(
        idle >= idle_timeout - Duration::from_millis(100),
        "closed after {idle:?} idle, before the idle timeout"
    );

    let metrics = ingester.service.metrics().await;
    assert_eq!(cuts(&metrics, "idle_timeout"), 1.0, "{metrics}");
    assert_eq!(cuts(&metrics, "header_timeout"), 0.0, "{metrics}");
}

/// The idle bound must hold whatever the request before it did. Here the
/// request is still being handled (its body arrives slowly, within the body
/// timeout) when the connection's header deadline passes.
///
/// Fails on the server as first written: its watchdog (shared/src/http/
/// connection.rs) wakes at the header deadline, finds the request in
/// progress, and then waits with no deadline; the move to idle does not
/// wake it, so the connection is held, and its slot taken, until the client
/// leaves or sends again.
#[tokio::test]
async fn a_kept_alive_connection_is_closed_when_idle_even_after_a_request_that_outlasted_the_header_timeout()
 {
    let header_timeout = Duration::from_millis(500);
    let idle_timeout = Duration::from_millis(1000);
    let env = TestEnv::new().await.unwrap();
    let ingester = env
        .start_ingester(&[
            ("HTTP_HEADER_TIMEOUT_MS", &millis(header_timeout)),
            ("HTTP_IDLE_TIMEOUT_MS", &millis(idle_timeout)),
            ("HTTP_BODY_TIMEOUT_MS", "5000"),
        ])
        .await
        .unwrap();
    let body = serde_json::to_vec(&payment_succeeded("o-slow", "u-slow", "starter", "10")).unwrap();

    let mut stream = connect(http_addr(&ingester)).await;
    stream.write_all(&signed_head(&body)).await.unwrap();
    stream.write_all(&body[..10]).await.unwrap();
    tokio::time::sleep(header_timeout * 2).await;
    stream.write_all(&body[10..]).await.unwrap();
    let answer = read_response(&mut stream, SLACK).await.expect("an answer");
    assert_eq!(answer.status, 200, "{answer:?}");
    let answered_at = Instant::now();

    let closed = read_until_closed(&mut stream, idle_timeout + SLACK).await;
    let metrics = ingester.service.metrics().await;
    let (bytes, closed_at) = closed.unwrap_or_else(|| {
        panic!(
            "the connection was still open {:?} after its answer, idle timeout {idle_timeout:?}; \
             idle cuts counted: {}",
            answered_at.elapsed(),
            cuts(&metrics, "idle_timeout").abs()
        )
    });
    assert!(bytes.is_empty(), "{:?}", String::from_utf8_lossy(&bytes));
    assert!(closed_at - answered_at >= idle_timeout - Duration::from_millis(100));
    assert_eq!(cuts(&metrics, "idle_timeout"), 1.0, "{metrics}");
}

#[tokio::test]
async fn beyond_the_connection_limit_a_connection_gets_503_and_service_resumes_once_slots_free() {
    let env = TestEnv::new().await.unwrap();
    let ingester = env
        .start_ingester(&[("HTTP_MAX_CONNECTIONS", "4")])
        .await
        .unwrap();
    let addr = http_addr(&ingester);

    // Four connections that have sent nothing yet: each holds a slot until
    // the (default, ten-second) header timeout, far beyond this test.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect(addr).await);
    }
    let mut fifth = connect(addr).await;
    let (bytes, _) = read_until_closed(&mut fifth, SLACK)
        .await
        .expect("the fifth connection is answered and closed");
    let refused = RawResponse::parse(&bytes)
        .unwrap_or_else(|| panic!("a readable 503: {:?}", String::from_utf8_lossy(&bytes)));
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(refused.body["code"], "TOO_MANY_CONNECTIONS", "{refused:?}");
    assert!(refused.has_header("retry-after: 1"), "{refused:?}");

    let metrics = ingester.service.metrics().await;
    assert_eq!(cuts(&metrics, "connection_limit"), 1.0, "{metrics}");

    // The held slots are released as their clients leave.
    for stream in held.iter_mut() {
        assert!(
            read_response(stream, Duration::from_millis(50))
                .await
                .is_none(),
            "a held connection was not answered or closed"
        );
    }
    drop(held);
    eventually(Duration::from_secs(5), async || {
        let answer = ingester.get("/healthz").await;
        seen(answer.status, answer.status == 200)
            .map_err(|_| format!("still refused after the held connections closed: {answer:?}"))
    })
    .await;
    let delivery = ingester
        .send(&payment_succeeded("o-after", "u-after", "starter", "10"))
        .await;
    assert_eq!(delivery.status, 200, "{delivery:?}");
}

#[tokio::test]
async fn the_api_cuts_slow_headers_and_slow_bodies_with_408_and_counts_them() {
    let header_timeout = Duration::from_millis(800);
    let body_timeout = Duration::from_millis(800);
    let env = TestEnv::new().await.unwrap();
    let crossmint = FakeCrossmint::start().await.unwrap();
    let api = env
        .start_api(
            &crossmint.api_url,
            &[
                ("HTTP_HEADER_TIMEOUT_MS", &millis(header_timeout)),
                ("HTTP_BODY_TIMEOUT_MS", &millis(body_timeout)),
            ],
        )
        .await
        .unwrap();
    let addr = api.service.http_addr.expect("the API's address");

    let slow_head = async {
        let connected_at = Instant::now();
        let (mut reader, writer) = connect(addr).await.into_split();
        let attack = dribble(
            writer,
            endless_head("/api/v1/user/credits/consume"),
            Duration::from_millis(100),
        );
        let closed = read_until_closed(&mut reader, header_timeout + SLACK).await;
        attack.abort();
        let (bytes, closed_at) = closed.expect("slow headers are cut within the timeout and slack");
        (bytes, closed_at - connected_at)
    };
    let slow_body = async {
        let mut stream = connect(addr).await;
        let head = format!(
            "POST /api/v1/user/credits/consume HTTP/1.1\r\nhost: ledgerhook\r\n\
             authorization: Bearer {}\r\ncontent-type: application/json\r\n\
             content-length: 1000\r\n\r\n{{\"amount\": ",
            token_for("slow-spender")
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let sent_at = Instant::now();
        let answer = read_response(&mut stream, body_timeout + SLACK).await;
        (answer, sent_at.elapsed())
    };
    let ((head_bytes, head_lasted), (body_answer, body_took)) = tokio::join!(slow_head, slow_body);

    let head_answer = RawResponse::parse(&head_bytes)
        .unwrap_or_else(|| panic!("a readable 408: {:?}", String::from_utf8_lossy(&head_bytes)));
    assert_eq!(head_answer.status, 408, "{head_answer:?}");
    assert_eq!(
        head_answer.body["code"], "REQUEST_TIMEOUT",
        "{head_answer:?}"
    );
    assert!(
        head_lasted >= header_timeout - Duration::from_millis(100),
        "slow headers cut after {head_lasted:?}"
    );

    let body_answer = body_answer.expect("the slow body is answered within the timeout and slack");
    assert_eq!(body_answer.status, 408, "{body_answer:?}");
    assert_eq!(
        body_answer.body["code"], "REQUEST_TIMEOUT",
        "{body_answer:?}"
    );
    assert!(
        body_answer.has_header("connection: close"),
        "{body_answer:?}"
    );
    assert!(
        body_took >= body_timeout - Duration::from_millis(100),
        "slow body answered after {body_took:?}"
    );

    let metrics = api.service.metrics().await;
    assert_eq!(cuts(&metrics, "header_timeout"), 1.0, "{metrics}");
    assert_eq!(cuts(&metrics, "body_timeout"), 1.0, "{metrics}");
    assert_eq!(
        env.count("select count(*) from credit_spends").await,
        0,
        "nothing spent"
    );
}

#[tokio::test]
async fn headers_larger_than_the_bound_are_431_headers_too_large_without_reaching_the_handler() {
    let env = TestEnv::new().await.unwrap();
    let ingester = env
        .start_ingester(&[("HTTP_MAX_HEADER_BYTES", "16384")])
        .await
        .unwrap();
    // 20 KB of headers that never end: all of it is read (so the close is a
    // clean FIN, not a reset) and the head is still incomplete past 16 KiB.
    let mut head = b"POST /webhooks/crossmint HTTP/1.1\r\nhost: ledgerhook\r\n".to_vec();
    for n in 0..200 {
        head.extend_from_slice(format!("x-padding-{n:03}: {}\r\n", "p".repeat(84)).as_bytes());
    }
    assert!(head.len() > 20_000);
    let mut client = connect(http_addr(&ingester)).await;
    client.write_all(&head).await.unwrap();

    let answer = read_response(&mut client, SLACK)
        .await
        .expect("a 431 before the connection closes");
    assert_eq!(answer.status, 431, "{answer:?}");
    assert_eq!(answer.body["code"], "HEADERS_TOO_LARGE");
    assert!(answer.has_header("connection: close"), "{answer:?}");
    let metrics = ingester.service.metrics().await;
    assert_eq!(cuts(&metrics, "header_too_large"), 1.0, "{metrics}");
    assert_eq!(
        env.count("select count(*) from webhook_deliveries").await,
        0
    );

    // Ordinary headers still pass on a new connection.
    let honest = ingester
        .send(&payment_succeeded("o-431", "u-431", "starter", "10"))
        .await;
    assert_eq!(honest.status, 200, "{honest:?}");
}
