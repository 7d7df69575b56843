//! Logs and metrics, set up once by each binary's `main`.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// Latency buckets in seconds, fine below 100 ms where the ingester lives and
/// reaching past the 2 s webhook-latency target and the sender's 15 s timeout.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 15.0, 60.0, 300.0,
];

/// Logs to stderr: human-readable by default, JSON lines with
/// `LOG_FORMAT=json`. `RUST_LOG` filters (default `info`).
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Installs the process-wide Prometheus recorder (the `metrics` crate's
/// design: one per process) and returns the handle that renders it.
pub fn install_metrics_recorder() -> anyhow::Result<PrometheusHandle> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
        .context("configuring histogram buckets")?
        .install_recorder()
        .context("installing the metrics recorder")
}

/// A bound metrics listener; bind first so the address (port 0 allowed) can
/// be reported before serving.
pub struct MetricsServer {
    listener: TcpListener,
    handle: PrometheusHandle,
}

impl MetricsServer {
    pub async fn bind(addr: SocketAddr, handle: PrometheusHandle) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the metrics listener on {addr}"))?;
        Ok(Self { listener, handle })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves `GET /metrics` until `shutdown`; keeps histograms drained.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let upkeep = self.handle.clone();
        let upkeep_stop = shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = tick.tick() => upkeep.run_upkeep(),
                    _ = upkeep_stop.cancelled() => break,
                }
            }
        });
        let handle = self.handle;
        let app = Router::new().route("/metrics", get(move || async move { handle.render() }));
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .context("serving metrics")
    }
}
