//! Serving HTTP on the public edge with bounds a slow or idle client cannot
//! stretch: headers must arrive within a deadline, a body within another, a
//! keep-alive connection may sit idle only so long, and only so many
//! connections are held at once. `axum::serve` has none of these.
//!
//! - [`limits`]: the bounds (timeouts, connections, header bytes) and their
//!   environment variables;
//! - [`connection`]: one connection, its phase and its watchdog;
//! - [`deadline`]: the request body that fails once its deadline passes;
//! - [`layers`]: what every request goes through (request id, span, access
//!   line, latency histogram), shared by the ingester and the API.
//!
//! Every cut is counted in `ledgerhook_http_connections_cut_total{reason}`.

pub mod connection;
pub mod deadline;
pub mod layers;
pub mod limits;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub use deadline::{BodyTimedOut, is_body_timeout};
pub use layers::with_http_layers;
pub use limits::ServerLimits;

/// Connections cut by a bound, by reason.
/// Request headers whose values are credentials (a sender's basic auth in
/// its endpoint URL, a gateway's key, the console's proxy secret): kept and
/// shown by name only, by the ingester's rejection log and the console.
pub const CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
    "x-console-proxy-secret",
];

pub const CONNECTIONS_CUT: &str = "ledgerhook_http_connections_cut_total";
/// Connections held open right now.
pub const CONNECTIONS_OPEN: &str = "ledgerhook_http_connections_open";
/// Request latency, by `service` (ingester, api), `route` and `status`
/// (recorded by [`layers`]). One name for both services, so one query (and
/// one dashboard panel) covers either; the request count is its `_count`.
pub const REQUEST_DURATION: &str = "ledgerhook_http_request_duration_seconds";

/// Describes the HTTP metrics, and starts every cut reason at zero, so that
/// `increase()` sees the first cut of each (a series born at 1 has no
/// increase to show).
pub fn describe_metrics() {
    metrics::describe_histogram!(
        REQUEST_DURATION,
        "HTTP request latency by service, route (the matched one, or unmatched) and status"
    );
    metrics::describe_counter!(
        CONNECTIONS_CUT,
        "Connections or requests cut by a bound (slow headers or body, idle, too large, connection limit), by reason"
    );
    metrics::describe_gauge!(CONNECTIONS_OPEN, "HTTP connections held open right now");
    for cut in Cut::ALL {
        metrics::counter!(CONNECTIONS_CUT, "reason" => cut.label()).increment(0);
    }
    metrics::gauge!(CONNECTIONS_OPEN).set(0.0);
}

/// Why a connection or request was cut; the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    HeaderTimeout,
    HeaderTooLarge,
    BodyTimeout,
    IdleTimeout,
    ConnectionLimit,
}

impl Cut {
    pub const ALL: [Self; 5] = [
        Self::HeaderTimeout,
        Self::HeaderTooLarge,
        Self::BodyTimeout,
        Self::IdleTimeout,
        Self::ConnectionLimit,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::HeaderTimeout => "header_timeout",
            Self::HeaderTooLarge => "header_too_large",
            Self::BodyTimeout => "body_timeout",
            Self::IdleTimeout => "idle_timeout",
            Self::ConnectionLimit => "connection_limit",
        }
    }

    pub fn count(self) {
        metrics::counter!(CONNECTIONS_CUT, "reason" => self.label()).increment(1);
    }
}

/// Sent, then the connection closed, when every connection slot is taken.
/// A webhook sender retries a 503; a browser shows it.
const TOO_MANY_CONNECTIONS: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 79\r\n\r\n\
{\"error\":\"the server is at its connection limit\",\"code\":\"TOO_MANY_CONNECTIONS\"}";
/// How long a refused connection is drained before it is closed, so the
/// client reads our 503 instead of a reset.
const REFUSAL_DRAIN: Duration = Duration::from_secs(1);
/// Refused connections being answered at once; beyond this, a refused
/// connection is closed without an answer, so a flood of connections cannot
/// pile up sockets in refusals either.
const MAX_REFUSALS_IN_FLIGHT: usize = 256;
/// Pause after a failed accept (out of file descriptors, say) so the loop
/// does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `router` on `listener` under `limits` until `shutdown`; then stops
/// accepting, lets each connection finish its request, and returns once all
/// are closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT));
    loop {
        let stream = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            Cut::ConnectionLimit.count();
            if let Ok(refusal) = refusals.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    refuse(stream).await;
                    drop(refusal);
                });
            }
            continue;
        };
        let (router, shutdown) = (router.clone(), shutdown.clone());
        tokio::spawn(async move {
            metrics::gauge!(CONNECTIONS_OPEN).increment(1.0);
            connection::serve(stream, router, limits, shutdown).await;
            metrics::gauge!(CONNECTIONS_OPEN).decrement(1.0);
            drop(slot);
        });
    }
    drop(listener);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
}

async fn refuse(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    if stream.write_all(TOO_MANY_CONNECTIONS).await.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(REFUSAL_DRAIN, async {
        while let Ok(read) = tokio::io::AsyncReadExt::read(&mut stream, &mut sink).await
            && read > 0
        {}
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_canned_answer_declares_its_true_length_and_its_code() {
        for (answer, code) in [
            (TOO_MANY_CONNECTIONS, "TOO_MANY_CONNECTIONS"),
            (connection::REQUEST_TIMEOUT, "REQUEST_TIMEOUT"),
            (connection::HEADERS_TOO_LARGE, "HEADERS_TOO_LARGE"),
        ] {
            let text = std::str::from_utf8(answer).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            assert!(
                head.contains(&format!("content-length: {}", body.len())),
                "{head}"
            );
            assert!(head.contains("connection: close"), "{head}");
            let json: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(json["code"], code);
        }
    }
}
