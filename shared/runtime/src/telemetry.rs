//! Logs and metrics, set up once by each binary's `main`.

use std::net::SocketAddr;
use std::time::Duration;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::{Value, json};
use std::future::Future;
use std::pin::Pin;
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

/// Gauge, always 1: which build a process runs, by `service`, `version`
/// (the crates' version) and `commit` (git's, or `unknown`).
pub const BUILD_INFO: &str = "ledgerhook_build_info";

/// What every service's `main` does first once its command line is
/// parsed: logs ([`init_tracing`]), then its metrics recorder
/// ([`install_metrics_recorder`]).
pub fn start_service(
    service: &'static str,
    build: Build,
    describe: impl FnOnce(),
) -> anyhow::Result<PrometheusHandle> {
    init_tracing();
    install_metrics_recorder(service, build, describe)
}

/// The build a binary runs, for [`BUILD_INFO`]: read where the binary is
/// compiled (see [`build!`](crate::build)).
#[derive(Debug, Clone, Copy)]
pub struct Build {
    pub version: &'static str,
    pub commit: &'static str,
}

/// This binary's [`Build`]: its crate's version, and the commit named by
/// `LEDGERHOOK_COMMIT` at compile time (`unknown` without it). A macro, so
/// that the variable is read where the binary is compiled: a new commit
/// then recompiles only each binary's `main`, not the crates below it
/// (cargo tracks a variable `option_env!` reads). `deploy/test.sh`,
/// `deploy/run.sh`, `deploy/bench.sh` and the Dockerfile set it from git.
#[macro_export]
macro_rules! build {
    () => {
        $crate::telemetry::Build {
            version: env!("CARGO_PKG_VERSION"),
            commit: match option_env!("LEDGERHOOK_COMMIT") {
                Some(commit) => commit,
                None => "unknown",
            },
        }
    };
}

/// Installs the process-wide Prometheus recorder (the `metrics` crate's
/// design: one per process) and returns the handle that renders it. The
/// first series it holds is `service`'s [`BUILD_INFO`]; then `describe`
/// gives every metric of the service its HELP text and starts its counters
/// at zero, so that the first event shows in `increase()` and `rate()` (a
/// series born at 1 has no increase) and a fresh process already exports
/// every name its dashboards and alerts read.
pub fn install_metrics_recorder(
    service: &'static str,
    build: Build,
    describe: impl FnOnce(),
) -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
        .context("configuring histogram buckets")?
        .install_recorder()
        .context("installing the metrics recorder")?;
    metrics::describe_gauge!(
        BUILD_INFO,
        "Always 1: the build this process runs (service, version, commit)"
    );
    metrics::gauge!(
        BUILD_INFO,
        "service" => service,
        "version" => build.version,
        "commit" => build.commit,
    )
    .set(1.0);
    describe();
    Ok(handle)
}

/// A bound metrics listener; bind first so the address (port 0 allowed) can
/// be reported before serving.
pub struct MetricsServer {
    listener: TcpListener,
    handle: PrometheusHandle,
    /// Served beside `/metrics`: a process without an HTTP port of its own
    /// (the worker) answers its health probes here.
    extra: Router,
}

impl MetricsServer {
    pub async fn bind(addr: SocketAddr, handle: PrometheusHandle) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the metrics listener on {addr}"))?;
        Ok(Self {
            listener,
            handle,
            extra: Router::new(),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Adds `/healthz` (200 while the process runs) and `/readyz` (200 only
    /// while `database` answers true in time and `broker_up` is set; else
    /// 503), for a process whose only port is this one. The body has the
    /// ingester's shape: `{"database": bool, "broker": bool}`.
    #[must_use]
    pub fn with_health(mut self, database: DatabaseCheck, broker_up: Arc<AtomicBool>) -> Self {
        let health = Router::new()
            .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
            .route(
                "/readyz",
                get(move || ready(database.clone(), broker_up.clone())),
            );
        self.extra = self.extra.merge(health);
        self
    }

    /// Serves `GET /metrics` (and any added routes) until `shutdown`; keeps histograms drained.
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
        let app = Router::new()
            .route("/metrics", get(move || async move { handle.render() }))
            .merge(self.extra);
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .context("serving metrics")
    }
}

/// How long the database may take to answer a readiness probe.
const DATABASE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Asks the database whether it answers (the store's `db::answers`).
pub type DatabaseCheck = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

/// Ready means "can process a message": the database answers a `select 1`
/// in time and the broker session holds a channel.
async fn ready(database: DatabaseCheck, broker_up: Arc<AtomicBool>) -> (StatusCode, Json<Value>) {
    let database = tokio::time::timeout(DATABASE_CHECK_TIMEOUT, database())
        .await
        .unwrap_or(false);
    let broker = broker_up.load(Ordering::Relaxed);
    let status = if database && broker {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"database": database, "broker": broker})),
    )
}
