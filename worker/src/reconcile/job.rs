//! The scheduled reconcile (`RECONCILE_INTERVAL_SECS`, off by default):
//! every interval, ask Crossmint about the orders still waiting past
//! `RECONCILE_OLDER_THAN_SECS`, and send the paid ones to the work queue.
//! Safe with any number of workers running it (see [`super`]).

use std::time::Duration;

use ledgerhook_runtime::amqp::{self, Broker, Topology};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use ledgerhook_providers::crossmint::OrdersApi;

use super::{FindingResult, Scope};
use crate::metrics;

/// When and what to reconcile, from the worker's configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub every: Duration,
    pub scope: Scope,
    pub crossmint: OrdersApi,
}

/// What the job needs besides the database.
pub struct Schedule {
    pub settings: Settings,
    pub broker: Broker,
    pub topology: Topology,
}

pub async fn run(pool: PgPool, schedule: Schedule, stop: CancellationToken) {
    let mut ticks = tokio::time::interval(schedule.settings.every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        tokio::select! {
            () = stop.cancelled() => return,
            result = once(&pool, &schedule) => if let Err(e) = result {
                // The next tick tries again; what was recorded stays in the
                // outbox for the ingester's relay.
                tracing::warn!(error = format!("{e:#}"), "reconcile run failed");
            }
        }
    }
}

async fn once(pool: &PgPool, schedule: &Schedule) -> anyhow::Result<()> {
    let settings = &schedule.settings;
    let run = super::run(
        pool,
        &settings.crossmint,
        settings.scope,
        super::Only::default(),
    )
    .await?;
    for finding in &run.findings {
        metrics::reconciled(finding.result.as_str());
        match finding.result {
            FindingResult::Recorded => tracing::warn!(
                order_id = %finding.order_id,
                provider_order_id = %finding.provider_order_id,
                "reconcile found a payment whose webhook never came; sent to the workers"
            ),
            FindingResult::Failed => tracing::warn!(
                provider_order_id = %finding.provider_order_id,
                detail = finding.detail.as_deref().unwrap_or_default(),
                "reconcile could not learn an order's status"
            ),
            FindingResult::AlreadyRecorded
            | FindingResult::NotPaid
            | FindingResult::WouldRecord => {}
        }
    }
    if run.recorded.is_empty() {
        return Ok(());
    }
    let connection = schedule.broker.connect("ledgerhook-reconcile").await?;
    let channel = amqp::confirmed_channel(&connection).await?;
    let published = super::publish(pool, &channel, &schedule.topology, &run.recorded).await;
    amqp::say_goodbye(connection.close(200, "reconciled".into())).await;
    published
}
