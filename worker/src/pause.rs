//! The pause switch (`processing_control`, one row): `ledgerhook-admin
//! pause` turns it on, every worker watches it and stops taking messages
//! while it is on. Its statements are `ledgerhook_store::control`.
//!
//! Why a poll and not LISTEN/NOTIFY: one primary-key read every
//! [`POLL_INTERVAL`] per worker is nothing to PostgreSQL, needs no dedicated
//! connection, and cannot miss a change across a reconnect; the poll
//! interval plus the drain is well inside the 2 s the runbook asks for.
//!
//! The same poll reads the revoke shortfalls (credits revoked from orders but
//! already spent), so each worker exports them as gauges: the admin that
//! revokes is a short-lived process with no metrics endpoint, and the
//! database is where the count lives.

use std::time::Duration;

use ledgerhook_domain::PaymentProvider;
use ledgerhook_store::control;
use sqlx::PgPool;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::metrics;

/// How often each worker looks at the switch.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// The providers paused on their own, as the processor reads them once
/// per batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeldProviders {
    pub crossmint: bool,
    pub stripe: bool,
}

impl HeldProviders {
    fn from_names(names: &[String]) -> Self {
        Self {
            crossmint: names
                .iter()
                .any(|n| n == PaymentProvider::Crossmint.as_str()),
            stripe: names.iter().any(|n| n == PaymentProvider::Stripe.as_str()),
        }
    }

    /// Whether deliveries about payments taken by `provider` wait.
    pub fn holds(self, provider: PaymentProvider) -> bool {
        match provider {
            PaymentProvider::Crossmint => self.crossmint,
            PaymentProvider::Stripe => self.stripe,
        }
    }
}

/// Watches the switch until `stop`: the first receiver holds whether
/// processing is paused, the second which providers are paused on their
/// own; both read once before this returns (a worker started while paused
/// never consumes). A failed read keeps the last values (a database outage
/// neither pauses nor resumes anyone).
pub async fn watch(
    pool: PgPool,
    stop: CancellationToken,
) -> (watch::Receiver<bool>, watch::Receiver<HeldProviders>) {
    let first = control::poll(&pool).await.ok();
    let (tx, rx) = watch::channel(first.as_ref().is_some_and(|p| p.paused));
    let (held_tx, held_rx) = watch::channel(
        first
            .as_ref()
            .map(|p| HeldProviders::from_names(&p.paused_providers))
            .unwrap_or_default(),
    );
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            match control::poll(&pool).await {
                Ok(poll) => {
                    metrics::revoke_shortfall(poll.shortfall_orders, poll.shortfall_credits);
                    tx.send_if_modified(|current| {
                        let changed = *current != poll.paused;
                        *current = poll.paused;
                        changed
                    });
                    let held = HeldProviders::from_names(&poll.paused_providers);
                    held_tx.send_if_modified(|current| {
                        let changed = *current != held;
                        *current = held;
                        changed
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the pause switch; keeping its last value");
                }
            }
        }
    });
    (rx, held_rx)
}
