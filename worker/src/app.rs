//! Building and running a worker.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ledgerhook_shared::amqp::Topology;
use ledgerhook_shared::db;
use ledgerhook_shared::ledger::GrantTerms;
use ledgerhook_shared::telemetry::MetricsServer;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::consumer::Consumer;
use crate::expiry_job;
use crate::processor::Processor;
use crate::retry::Settler;

pub struct App {
    consumer: Consumer,
    metrics: MetricsServer,
    expiry: Option<(PgPool, Duration)>,
}

impl App {
    pub async fn build(config: Config, metrics: PrometheusHandle) -> anyhow::Result<Self> {
        let pool = db::connect_and_migrate(
            config.database_url.expose(),
            config.pool_size,
            "ledgerhook-worker",
        )
        .await?;
        let metrics = MetricsServer::bind(config.metrics_addr, metrics).await?;
        let topology = Topology::new(&config.queue_prefix);
        let consumer = Consumer {
            broker: config.broker,
            topology: topology.clone(),
            processor: Processor {
                pool: pool.clone(),
                terms: Arc::new(GrantTerms {
                    credit: config.credit_terms,
                    notify: config.notify,
                }),
            },
            settler: Settler {
                schedule: config.retry,
                topology,
                pool: pool.clone(),
            },
            concurrency: config.concurrency,
            batch_size: config.batch_size,
            shutdown_grace: config.shutdown_grace,
        };
        let expiry = config.expiry_interval.map(|every| (pool, every));
        Ok(Self {
            consumer,
            metrics,
            expiry,
        })
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics.local_addr()
    }

    /// Consumes until `shutdown`, then drains and returns.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let metrics_stop = CancellationToken::new();
        let metrics_task = tokio::spawn(self.metrics.run(metrics_stop.clone()));
        let expiry_task = self
            .expiry
            .map(|(pool, every)| tokio::spawn(expiry_job::run(pool, every, metrics_stop.clone())));
        self.consumer.run(shutdown).await;
        metrics_stop.cancel();
        if let Some(task) = expiry_task {
            task.await?;
        }
        metrics_task.await??;
        Ok(())
    }
}
