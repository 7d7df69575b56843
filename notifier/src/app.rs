//! Building and running a notifier: the outbox loop and the
//! `/metrics` + `/healthz` listener.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::routing::get;
use ledgerhook_domain::Channel;
use ledgerhook_store::db;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::chat::ChatHook;
use crate::config::Config;
use crate::email::Mailer;
use crate::runner::{RetryPolicy, Runner, Senders};

pub struct App {
    runner: Runner,
    listener: TcpListener,
    metrics: PrometheusHandle,
}

impl App {
    pub async fn build(config: Config, metrics: PrometheusHandle) -> anyhow::Result<Self> {
        let mut senders = Senders::default();
        if let Some(email) = &config.email {
            senders.email = Some(Mailer::new(
                &email.smtp_url,
                &email.from,
                config.send_timeout,
            )?);
        }
        let hook = |channel, url: &Option<_>| -> anyhow::Result<Option<ChatHook>> {
            url.clone()
                .map(|url| ChatHook::new(channel, url, config.send_timeout))
                .transpose()
                .context("building the HTTP client")
        };
        senders.discord = hook(Channel::Discord, &config.discord_url)?;
        senders.feishu = hook(Channel::Feishu, &config.feishu_url)?;
        let pool = db::connect(
            config.database_url.expose(),
            config.pool_size,
            "ledgerhook-notifier",
            config.migrations,
        )
        .await?;
        let listener = TcpListener::bind(config.metrics_addr)
            .await
            .with_context(|| format!("binding the metrics listener on {}", config.metrics_addr))?;
        let runner = Runner {
            pool,
            senders,
            retry: RetryPolicy {
                max_attempts: config.max_attempts,
                initial: config.retry_initial,
                max: config.retry_max,
            },
            poll_interval: config.poll_interval,
            batch_size: config.batch_size,
            concurrency: config.concurrency,
            lease: config.lease(),
        };
        Ok(Self {
            runner,
            listener,
            metrics,
        })
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The configured channels, for the start line.
    pub fn channels(&self) -> String {
        let names = self.runner.senders.channels().names();
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(",")
        }
    }

    /// Sends until `shutdown`, then finishes what is in flight and returns.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let serving_stop = CancellationToken::new();
        let serving = tokio::spawn(serve(self.listener, self.metrics, serving_stop.clone()));
        self.runner.run(shutdown).await;
        serving_stop.cancel();
        serving.await?
    }
}

/// `GET /metrics` (Prometheus) and `GET /healthz` (the process is up).
async fn serve(
    listener: TcpListener,
    handle: PrometheusHandle,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let upkeep = handle.clone();
    let upkeep_stop = shutdown.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = tick.tick() => upkeep.run_upkeep(),
                () = upkeep_stop.cancelled() => break,
            }
        }
    });
    let app = Router::new()
        .route("/metrics", get(move || async move { handle.render() }))
        .route("/healthz", get(|| async { "ok" }));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .context("serving metrics")
}
