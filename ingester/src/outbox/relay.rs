//! Finds deliveries the direct path did not publish and sends them again;
//! keeps the backlog gauges current.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ledgerhook_domain::Delivery;
use ledgerhook_store::deliveries::outbox;
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics;

/// Deliveries claimed per sweep; the next sweep takes the rest.
const BATCH: i64 = 500;

pub struct Relay {
    pub pool: PgPool,
    pub items: mpsc::Sender<Vec<Delivery>>,
    pub connected: Arc<AtomicBool>,
    pub interval: Duration,
    pub grace: Duration,
    /// The publisher's most deliveries per message (`PUBLISH_CARRIER_MAX`).
    pub carrier_max: usize,
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
        match outbox::unpublished_backlog(&self.pool).await {
            Ok((count, oldest)) => metrics::backlog(count, oldest),
            Err(e) => tracing::warn!(error = %e, "could not measure the outbox backlog"),
        }
    }

    async fn resend(&self) {
        let claimed = match outbox::claim_unpublished(&self.pool, self.grace, BATCH).await {
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
        // In carrier-sized parts, so that the publisher is never handed
        // more at once than it sends in one message.
        let mut claimed = claimed.into_iter().peekable();
        while claimed.peek().is_some() {
            let part: Vec<Delivery> = claimed.by_ref().take(self.carrier_max).collect();
            let count = part.len();
            if self.items.send(part).await.is_err() {
                return;
            }
            metrics::relayed(count);
        }
    }
}
