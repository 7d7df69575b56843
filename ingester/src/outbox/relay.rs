//! Finds deliveries the direct path did not publish and sends them again;
//! keeps the backlog gauges current.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::OutboxItem;
use crate::{metrics, store};

/// Deliveries claimed per sweep; the next sweep takes the rest.
const BATCH: i64 = 500;

pub struct Relay {
    pub pool: PgPool,
    pub items: mpsc::Sender<OutboxItem>,
    pub connected: Arc<AtomicBool>,
    pub interval: Duration,
    pub grace: Duration,
}

impl Relay {
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.interval);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.cancelled() => return,
            }
            self.report_backlog().await;
            // Claiming while the broker is away would only mark rows as
            // attempted; wait until the publisher can take them.
            if self.connected.load(Ordering::Relaxed) {
                self.resend().await;
            }
        }
    }

    async fn report_backlog(&self) {
        match store::unpublished_backlog(&self.pool).await {
            Ok((count, oldest)) => metrics::backlog(count, oldest),
            Err(e) => tracing::warn!(error = %e, "could not measure the outbox backlog"),
        }
    }

    async fn resend(&self) {
        let claimed = match store::claim_unpublished(&self.pool, self.grace, BATCH).await {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the outbox");
                return;
            }
        };
        if claimed.is_empty() {
            return;
        }
        tracing::info!(count = claimed.len(), "relaying unpublished deliveries");
        for row in claimed {
            let item = OutboxItem {
                row: row.id,
                delivery_id: row.delivery_id,
                body: Bytes::from(row.body),
                received_at_us: row.received_at.timestamp_micros(),
            };
            if self.items.send(item).await.is_err() {
                return;
            }
            metrics::relayed();
        }
    }
}
