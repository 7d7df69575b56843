//! Building and running a worker.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use ledgerhook_runtime::amqp::Topology;
use ledgerhook_runtime::telemetry::MetricsServer;
use ledgerhook_store::db;
use ledgerhook_store::ledger::GrantTerms;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::consumer::Consumer;
use crate::expiry_job;
use crate::payment_timeout_job;
use crate::processor::Processor;
use crate::reconcile;
use crate::settler::Settler;

pub struct App {
    consumer: Consumer,
    metrics: MetricsServer,
    expiry: Option<(PgPool, Duration)>,
    reconcile: Option<(PgPool, reconcile::job::Schedule)>,
    /// The pool, the timeout and the interval of the payment timeout job.
    payment_timeout: Option<(PgPool, Duration, Duration)>,
    /// The pool, the settings and the interval of the retention job.
    retention: Option<(PgPool, crate::retention::Settings, Duration)>,
    /// Stops the pause switch's watcher once the consumer has returned.
    pause_stop: CancellationToken,
}

impl App {
    pub async fn build(config: Config, metrics: PrometheusHandle) -> anyhow::Result<Self> {
        let pool = db::connect(
            config.database_url.expose(),
            config.pool_size,
            "ledgerhook-worker",
            config.migrations,
        )
        .await?;
        let broker_up = Arc::new(AtomicBool::new(false));
        let metrics = MetricsServer::bind(config.metrics_addr, metrics)
            .await?
            .with_health(
                {
                    let pool = pool.clone();
                    Arc::new(move || {
                        let pool = pool.clone();
                        Box::pin(async move { db::answers(&pool).await })
                    })
                },
                broker_up.clone(),
            );
        let topology = Topology::new(&config.queue_prefix);
        let reconcile = config.reconcile.map(|settings| {
            let schedule = reconcile::job::Schedule {
                settings,
                broker: config.broker.clone(),
                topology: topology.clone(),
            };
            (pool.clone(), schedule)
        });
        let pause_stop = CancellationToken::new();
        let (paused, held) = crate::pause::watch(pool.clone(), pause_stop.clone()).await;
        let consumer = Consumer {
            broker: config.broker,
            topology: topology.clone(),
            processor: Processor {
                pool: pool.clone(),
                terms: Arc::new(GrantTerms {
                    credit: config.credit_terms,
                    notify: config.notify,
                    subscription_grace_days: config.subscription_grace_days,
                }),
                lookup: config.payment_lookup,
                held,
            },
            settler: Settler {
                schedule: config.retry,
                topology,
                defer: config.defer,
                waits_declared: AtomicBool::new(false),
            },
            concurrency: config.concurrency,
            batch_size: config.batch_size,
            shutdown_grace: config.shutdown_grace,
            paused,
            broker_up,
        };
        let payment_timeout = config
            .payment_timeout_interval
            .map(|every| (pool.clone(), config.payment_timeout, every));
        let retention = config
            .retention_interval
            .map(|every| (pool.clone(), config.retention, every));
        let expiry = config.expiry_interval.map(|every| (pool, every));
        Ok(Self {
            consumer,
            metrics,
            expiry,
            reconcile,
            payment_timeout,
            retention,
            pause_stop,
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
        let reconcile_task = self.reconcile.map(|(pool, schedule)| {
            tokio::spawn(reconcile::job::run(pool, schedule, metrics_stop.clone()))
        });
        let payment_timeout_task = self.payment_timeout.map(|(pool, timeout, every)| {
            tokio::spawn(payment_timeout_job::run(
                pool,
                timeout,
                every,
                metrics_stop.clone(),
            ))
        });
        let retention_task = self.retention.map(|(pool, settings, every)| {
            tokio::spawn(crate::retention::job::run(
                pool,
                settings,
                every,
                metrics_stop.clone(),
            ))
        });
        self.consumer.run(shutdown).await;
        self.pause_stop.cancel();
        metrics_stop.cancel();
        for task in [
            expiry_task,
            reconcile_task,
            payment_timeout_task,
            retention_task,
        ]
        .into_iter()
        .flatten()
        {
            task.await?;
        }
        metrics_task.await??;
        Ok(())
    }
}
