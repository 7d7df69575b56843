//! Publishes outbox items to RabbitMQ with confirms, reconnecting forever.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use lapin::Channel;
use ledgerhook_domain::Delivery;
use ledgerhook_runtime::amqp::carrier::MAX_CARRIED_BYTES;
use ledgerhook_runtime::amqp::{self, Broker, NotPublished, PendingConfirm, Topology};
use ledgerhook_runtime::retry;
use ledgerhook_store::deliveries;
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics;

/// Deliveries in publishes awaiting their confirm at once. Awaiting each
/// confirm before the next publish capped one publisher at about 1,900/s
/// here; pipelining removes that ceiling, and the bound keeps memory flat if
/// the broker stalls.
const MAX_IN_FLIGHT: usize = 2048;
/// How long the publisher waits for more deliveries to fill a carrier: a
/// millisecond more before a delivery reaches the worker, against a third
/// of the broker's work per delivery (see the README's benchmarks).
const LINGER: Duration = Duration::from_millis(1);
/// How often confirmed rows are marked published, in one UPDATE per batch.
const MARK_INTERVAL: Duration = Duration::from_millis(20);
/// Handing one message to the connection takes microseconds; a hand-over
/// this slow means the connection is dead or blocked by the broker, and a
/// fresh connection is the way out of both (the row stays in the outbox).
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Publisher {
    pub pool: PgPool,
    pub broker: Broker,
    pub topology: Topology,
    pub connected: Arc<AtomicBool>,
    /// The most deliveries in one message (`PUBLISH_CARRIER_MAX`, at most
    /// [`ledgerhook_runtime::amqp::carrier::MAX_CARRIED`]); 1 sends each
    /// delivery alone.
    pub carrier_max: usize,
    /// Set by a nack, cleared by the next confirmed publish: until then the
    /// broker counts as not connected (not ready), whatever channel is open.
    pub refusing: Arc<AtomicBool>,
}

impl Publisher {
    /// Runs until every sender of `items` is dropped (the HTTP server and the
    /// relay have stopped), then drains what it holds. While the broker is
    /// unreachable it retries with growing delays until `shutdown`.
    pub async fn run(self, items: mpsc::Receiver<Vec<Delivery>>, shutdown: CancellationToken) {
        // Each session borrows the receiver in turn (never two at once).
        let items = &tokio::sync::Mutex::new(items);
        let this = &self;
        let ended = retry::reconnect(&shutdown, || async move {
            let channel = this.open_channel().await.inspect_err(|e| {
                tracing::warn!(error = format!("{e:#}"), "broker unreachable; retrying");
            })?;
            // After refusals, the gauge and readiness wait for the broker
            // to confirm a publish on the fresh channel (`set_refusing`).
            this.set_connected(true);
            let result = this.pump(&channel, &mut *items.lock().await).await;
            this.set_connected(false);
            amqp::say_goodbye(channel.close(200, "OK".into())).await;
            result.inspect_err(|e| {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "publisher lost its channel; reconnecting"
                );
            })
        })
        .await;
        if ended == retry::Ended::Shutdown {
            tracing::info!(
                "publisher stopping while disconnected; unpublished deliveries stay in the outbox"
            );
        }
    }

    /// Whether a channel is held (the relay hands rows over only then);
    /// the gauge reads 1 only while one is held and the broker is not
    /// refusing publishes.
    fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Ordering::Relaxed);
        metrics::gauge_broker_connected(connected && !self.refusing.load(Ordering::Relaxed));
    }

    fn set_refusing(&self, refusing: bool) {
        self.refusing.store(refusing, Ordering::Relaxed);
        metrics::gauge_broker_connected(self.connected.load(Ordering::Relaxed) && !refusing);
    }

    async fn open_channel(&self) -> anyhow::Result<Channel> {
        let connection = self.broker.connect("ledgerhook-ingester").await?;
        let channel = amqp::confirmed_channel(&connection).await?;
        self.topology.declare_once(&channel).await?;
        tracing::info!("publisher connected to the broker");
        Ok(channel)
    }

    /// Publishes until the item channel closes (Ok) or the broker fails (Err).
    /// What is waiting when the publisher gets to it leaves together, in one
    /// carrier of up to `carrier_max` deliveries (one confirm covers them
    /// all); a delivery that is alone leaves in the single-delivery form.
    async fn pump(
        &self,
        channel: &Channel,
        items: &mut mpsc::Receiver<Vec<Delivery>>,
    ) -> anyhow::Result<()> {
        let mut in_flight = FuturesUnordered::new();
        // Deliveries in the messages awaiting their confirm.
        let mut unconfirmed = 0usize;
        let mut confirmed: Vec<i64> = Vec::new();
        let mut mark_tick = tokio::time::interval(MARK_INTERVAL);
        let channels = [channel];
        let channel_lost = amqp::until_closed(&channels);
        tokio::pin!(channel_lost);
        let mut closed = false;
        let mut failure = None;
        // Ended by a nack (counted as rejected), not by a lost channel.
        let mut refused = false;
        while failure.is_none() && !(closed && in_flight.is_empty()) {
            tokio::select! {
                Some((rows, confirmation)) = in_flight.next(), if !in_flight.is_empty() => {
                    let rows: Vec<i64> = rows;
                    unconfirmed -= rows.len();
                    match confirmation {
                        Ok(()) => {
                            confirmed.extend(rows);
                            if self.refusing.load(Ordering::Relaxed) {
                                self.set_refusing(false);
                            }
                        }
                        Err(NotPublished::Channel(e)) => failure = Some(anyhow::Error::new(e).context("awaiting a publisher confirm")),
                        Err(NotPublished::Refused) => {
                            // Nacked: the broker could not store it. On a
                            // cluster that lost a node, a channel can keep
                            // refusing everything (RabbitMQ 3.10 routes it to
                            // the dead node's queue process); a fresh
                            // connection does not. Not ready meanwhile. The
                            // rows stay unpublished for the relay.
                            tracing::warn!(rows = ?rows, "publish refused (nack); reconnecting on a fresh channel");
                            metrics::publish_failed(metrics::PUBLISH_REJECTED);
                            self.set_refusing(true);
                            refused = true;
                            failure = Some(anyhow::anyhow!("the broker refused a publish (nack)"));
                        }
                        Err(refused) => {
                            // Returned as unroutable (or not confirmed): a
                            // failure, not a success; the topology, not the
                            // channel, is at fault. The rows stay
                            // unpublished for the relay.
                            tracing::warn!(rows = ?rows, error = %refused, "publish not accepted by the broker");
                            metrics::publish_failed(metrics::PUBLISH_REJECTED);
                        }
                    }
                }
                batch = items.recv(), if !closed && unconfirmed < MAX_IN_FLIGHT => match batch {
                    Some(batch) => {
                        let mut waiting = VecDeque::from(batch);
                        // What arrives within LINGER joins them: one group
                        // commit's batch is about a dozen deliveries at 64
                        // senders, and the broker's cost is per message.
                        let until = tokio::time::Instant::now() + LINGER;
                        while waiting.len() < self.carrier_max {
                            match tokio::time::timeout_at(until, items.recv()).await {
                                Ok(Some(more)) => waiting.extend(more),
                                Ok(None) => {
                                    closed = true;
                                    break;
                                }
                                Err(_) => break,
                            }
                        }
                        while failure.is_none() && !waiting.is_empty() {
                            let carried = next_carrier(&mut waiting, self.carrier_max);
                            match publish(channel, &self.topology, &carried).await {
                                Ok(confirm) => {
                                    let rows: Vec<i64> = carried.iter().map(|d| d.row).collect();
                                    unconfirmed += rows.len();
                                    in_flight.push(async move { (rows, confirm.outcome().await) });
                                }
                                // What is left stays in the outbox, for the relay.
                                Err(e) => failure = Some(e),
                            }
                        }
                    }
                    None => closed = true,
                },
                _ = mark_tick.tick() => self.mark(&mut confirmed),
                () = &mut channel_lost => {
                    failure = Some(anyhow::anyhow!("the channel closed without telling its waiters"));
                }
            }
        }
        if failure.is_some() && !refused {
            metrics::publish_failed(metrics::PUBLISH_CHANNEL_LOST);
        }
        self.mark(&mut confirmed);
        failure.map_or(Ok(()), Err)
    }

    /// Marks confirmed rows in the background so confirms keep flowing. If the
    /// update fails, the rows stay unpublished and are simply sent again.
    fn mark(&self, confirmed: &mut Vec<i64>) {
        if confirmed.is_empty() {
            return;
        }
        let rows = std::mem::take(confirmed);
        metrics::published(rows.len());
        let pool = self.pool.clone();
        tokio::spawn(async move {
            if let Err(e) = deliveries::outbox::mark_published(&pool, &rows).await {
                tracing::warn!(error = %e, count = rows.len(), "could not mark deliveries published; the relay will resend them");
            }
        });
    }
}

/// The next carrier's worth from the front of `waiting`: at least one
/// delivery, at most `max`, and no more once the bodies reach
/// [`MAX_CARRIED_BYTES`].
fn next_carrier(waiting: &mut VecDeque<Delivery>, max: usize) -> Vec<Delivery> {
    let mut carried = Vec::with_capacity(waiting.len().min(max));
    let mut bytes = 0;
    while carried.len() < max && bytes < MAX_CARRIED_BYTES {
        let Some(delivery) = waiting.pop_front() else {
            break;
        };
        bytes += delivery.body.len();
        carried.push(delivery);
    }
    carried
}

async fn publish(
    channel: &Channel,
    topology: &Topology,
    deliveries: &[Delivery],
) -> anyhow::Result<PendingConfirm> {
    let publishing = amqp::publish_deliveries(channel, topology, deliveries);
    tokio::time::timeout(PUBLISH_TIMEOUT, publishing)
        .await
        .context("handing a delivery to the broker timed out")?
        .context("publishing a delivery")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Bytes;
    use ledgerhook_domain::Provider;
    use ledgerhook_runtime::amqp::carrier::MAX_CARRIED;

    fn waiting(count: usize, body_bytes: usize) -> VecDeque<Delivery> {
        (0..count)
            .map(|n| Delivery {
                row: n as i64,
                provider: Provider::Crossmint,
                delivery_id: format!("msg_{n}"),
                received_at: chrono::Utc::now(),
                body: Bytes::from(vec![b' '; body_bytes]),
            })
            .collect()
    }

    #[test]
    fn carriers_take_at_most_their_count_and_stop_at_their_size() {
        let mut many = waiting(40, 100);
        assert_eq!(next_carrier(&mut many, MAX_CARRIED).len(), MAX_CARRIED);
        assert_eq!(next_carrier(&mut many, MAX_CARRIED).len(), 40 - MAX_CARRIED);
        assert!(many.is_empty());

        let mut large = waiting(3, MAX_CARRIED_BYTES / 2 + 1);
        let first = next_carrier(&mut large, MAX_CARRIED);
        assert_eq!(first.iter().map(|d| d.row).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(next_carrier(&mut large, MAX_CARRIED).len(), 1);

        let mut huge = waiting(2, MAX_CARRIED_BYTES * 2);
        assert_eq!(
            next_carrier(&mut huge, MAX_CARRIED).len(),
            1,
            "one too large still leaves, alone"
        );

        let mut alone = waiting(3, 100);
        assert_eq!(
            next_carrier(&mut alone, 1).len(),
            1,
            "PUBLISH_CARRIER_MAX=1"
        );
        assert_eq!(next_carrier(&mut alone, 2).len(), 2);
    }
}
