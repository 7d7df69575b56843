//! Building and running the ingester: listeners bound first (port 0 allowed)
//! so callers learn the addresses before anything is served.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context as _;
use ledgerhook_domain::Delivery;
use ledgerhook_runtime::amqp::Topology;
use ledgerhook_runtime::http;
use ledgerhook_runtime::telemetry::MetricsServer;
use ledgerhook_store::db;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::outbox::publisher::Publisher;
use crate::outbox::relay::Relay;
use crate::recorder::Recorder;
use crate::rejection_log::RejectionLog;
use crate::routes;
use crate::webhook_keys::WebhookKeys;

/// Batches of deliveries waiting for the publisher (a group commit's new
/// deliveries, up to 128, or a relay sweep's share of a carrier); beyond
/// this, deliveries wait in the database for the relay instead of in memory.
const OUTBOX_CHANNEL_CAPACITY: usize = 512;
/// How long shutdown waits for the publisher to drain.
const PUBLISHER_DRAIN: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub keys: Arc<WebhookKeys>,
    pub max_body_bytes: usize,
    pub record_timeout: Duration,
    pub recorder: Recorder,
    pub broker_connected: Arc<AtomicBool>,
    /// The last refused requests, for the console.
    pub rejections: RejectionLog,
    /// Set while the broker refuses this ingester's publishes (the
    /// publisher's; readiness reads it).
    pub broker_refusing: Arc<AtomicBool>,
}

pub struct App {
    listener: TcpListener,
    metrics: MetricsServer,
    state: AppState,
    outbox: mpsc::Receiver<Vec<Delivery>>,
    /// The relay's way into the publisher (the recorder holds the other).
    relay_sender: mpsc::Sender<Vec<Delivery>>,
    config: Config,
}

impl App {
    pub async fn build(config: Config, metrics: PrometheusHandle) -> anyhow::Result<Self> {
        let pool = db::connect(
            config.database_url.expose(),
            config.pool_size,
            "ledgerhook-ingester",
            config.migrations,
        )
        .await?;
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| format!("binding {}", config.listen_addr))?;
        let metrics = MetricsServer::bind(config.metrics_addr, metrics).await?;
        let (sender, outbox) = mpsc::channel(OUTBOX_CHANNEL_CAPACITY);
        let state = AppState {
            recorder: Recorder::start(pool.clone(), sender.clone()),
            rejections: RejectionLog::start(
                pool.clone(),
                config.rejected_kept,
                config.rejected_per_second,
            ),
            pool,
            keys: Arc::new(config.keys.clone()),
            max_body_bytes: config.max_body_bytes,
            record_timeout: config.record_timeout,
            broker_connected: Arc::new(AtomicBool::new(false)),
            broker_refusing: Arc::new(AtomicBool::new(false)),
        };
        Ok(Self {
            listener,
            metrics,
            state,
            outbox,
            relay_sender: sender,
            config,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics.local_addr()
    }

    /// Serves until `shutdown`; then finishes in-flight requests, stops the
    /// relay and lets the publisher drain what it was handed.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Self {
            listener,
            metrics,
            state,
            outbox,
            relay_sender,
            config,
        } = self;
        let publisher = Publisher {
            pool: state.pool.clone(),
            broker: config.broker.clone(),
            topology: Topology::new(&config.queue_prefix),
            connected: state.broker_connected.clone(),
            carrier_max: config.carrier_max,
            refusing: state.broker_refusing.clone(),
        };
        let publisher_stop = CancellationToken::new();
        let publisher_task = tokio::spawn(publisher.run(outbox, publisher_stop.clone()));
        let relay = Relay {
            pool: state.pool.clone(),
            items: relay_sender,
            connected: state.broker_connected.clone(),
            interval: config.relay_interval,
            grace: config.relay_grace,
            carrier_max: config.carrier_max,
        };
        let relay_task = tokio::spawn(relay.run(shutdown.clone()));
        let metrics_task = tokio::spawn(metrics.run(shutdown.clone()));

        http::serve(
            listener,
            routes::router(state),
            config.http,
            shutdown.clone(),
        )
        .await;
        // The router (and with it the recorder) is gone; once the relay stops
        // too, the publisher sees its channel close and drains.
        let _ = relay_task.await;
        if tokio::time::timeout(PUBLISHER_DRAIN, publisher_task)
            .await
            .is_err()
        {
            tracing::warn!(
                "publisher did not drain in time; the relay will publish the rest after restart"
            );
            publisher_stop.cancel();
        }
        let _ = metrics_task.await;
        Ok(())
    }
}
