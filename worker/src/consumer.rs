//! Consuming the work queue: the broker session (channels, prefetch,
//! reconnection, liveness, a graceful stop), batching, and handing each
//! batch to the [`Processor`] and its verdicts to the [`Settler`], which
//! acknowledges.
//!
//! The operator's pause switch ([`crate::pause`]) ends a session the way a
//! shutdown does (stop taking messages, finish and acknowledge what is held,
//! close: unacknowledged prefetched messages go back to the queue), then the
//! consumer stays off the broker until the switch is turned off again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use futures_util::{FutureExt as _, StreamExt as _};
use lapin::message::Delivery;
use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use ledgerhook_domain::Provider;
use ledgerhook_runtime::amqp::{self, Broker, Topology, carrier};
use ledgerhook_runtime::retry;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::metrics;
use crate::processor::{Message, Processor};
use crate::settler::{Parked, Settlement, Settler};

/// The processor's view of an AMQP message: the one delivery it holds, or
/// each of those it carries. A carrier whose headers do not describe its
/// body is one message with no row (the processor parks it whole).
fn messages_of(delivery: &Delivery) -> Vec<Message<'_>> {
    let headers = delivery.properties.headers().as_ref();
    let destination = delivery.exchange.as_str();
    match carrier::carried(headers, delivery.data.len()) {
        None => vec![Message {
            delivery_id: delivery
                .properties
                .message_id()
                .as_ref()
                .map(lapin::types::ShortString::as_str),
            delivery_row: amqp::header_i64(headers, amqp::HEADER_DELIVERY_ROW),
            provider: Provider::from_label(amqp::header_str(headers, amqp::HEADER_PROVIDER)),
            received_at_us: amqp::header_i64(headers, amqp::HEADER_RECEIVED_AT_US),
            body: &delivery.data,
            destination,
            alone: true,
            span: OnceLock::new(),
        }],
        Some(Ok(carried)) => carried
            .into_iter()
            .map(|one| Message {
                delivery_id: Some(one.delivery_id),
                delivery_row: Some(one.row),
                provider: Provider::from_label(Some(one.provider)),
                received_at_us: Some(one.received_at_us),
                body: &delivery.data[one.body],
                destination,
                alone: false,
                span: OnceLock::new(),
            })
            .collect(),
        Some(Err(malformed)) => {
            tracing::warn!(error = %malformed, "parking a malformed carrier whole");
            vec![Message {
                delivery_id: None,
                delivery_row: None,
                provider: Err("unknown"),
                received_at_us: None,
                body: &delivery.data,
                destination,
                alone: true,
                span: OnceLock::new(),
            }]
        }
    }
}

pub struct Consumer {
    pub broker: Broker,
    pub topology: Topology,
    pub processor: Processor,
    pub settler: Settler,
    /// Batches (transactions) in process at once.
    pub concurrency: usize,
    /// Most messages applied in one transaction.
    pub batch_size: usize,
    pub shutdown_grace: Duration,
    /// Whether the operator has paused processing ([`crate::pause::watch`]).
    pub paused: watch::Receiver<bool>,
    /// Set while a session is consuming, cleared when it ends: what the
    /// worker's `/readyz` reports as `broker`.
    pub broker_up: Arc<AtomicBool>,
}

impl Consumer {
    /// Consumes until `shutdown`, reconnecting whenever the broker goes away,
    /// and staying off it while processing is paused.
    pub async fn run(self, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let shutdown = &shutdown;
        metrics::paused(false);
        loop {
            if !this.wait_while_paused(shutdown).await {
                return;
            }
            retry::reconnect(shutdown, || {
                let this = this.clone();
                async move {
                    this.session(shutdown).await.inspect_err(|e| {
                        tracing::warn!(
                            error = format!("{e:#}"),
                            "consumer lost the broker; reconnecting"
                        );
                    })
                }
            })
            .await;
            if shutdown.is_cancelled() {
                return;
            }
            // A session ends Ok otherwise only when the switch was turned on.
        }
    }

    /// While paused, waits off the broker until resumed. False if
    /// `shutdown` came first.
    async fn wait_while_paused(&self, shutdown: &CancellationToken) -> bool {
        let mut paused = self.paused.clone();
        if !*paused.borrow_and_update() {
            return !shutdown.is_cancelled();
        }
        metrics::paused(true);
        tracing::info!("processing paused by the operator; off the broker until resumed");
        let resumed = tokio::select! {
            // A closed switch (its watcher gone) resumes: better to process
            // than to wait for a value that cannot come.
            _ = paused.wait_for(|p| !*p) => true,
            () = shutdown.cancelled() => false,
        };
        if resumed {
            metrics::paused(false);
            tracing::info!("processing resumed; reconnecting");
        }
        resumed
    }

    /// One connection's worth of consuming. Ok when stopped by `shutdown`.
    async fn session(self: Arc<Self>, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let mut paused = self.paused.clone();
        if *paused.borrow_and_update() {
            return Ok(());
        }
        let connection = self.broker.connect("ledgerhook-worker").await?;
        let channel = connection
            .create_channel()
            .await
            .context("opening a channel")?;
        self.topology.declare_once(&channel).await?;
        // Counted in messages, and a carrier holds up to MAX_CARRIED
        // deliveries: a quarter of "every batch slot full plus one batch
        // waiting" keeps work at hand whenever a batch commits (carriers
        // fill a batch in a few messages; single deliveries still make
        // batches of tens), bounds what is held in memory (a full prefetch
        // of carriers is 2,560 deliveries at the defaults), and leaves the
        // rest of the queue to other workers.
        let prefetch = u16::try_from(((self.concurrency + 1) * self.batch_size).div_ceil(4))
            .unwrap_or(u16::MAX);
        channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await
            .context("setting prefetch")?;
        // Retry and parking copies go through the settler's confirmed channel.
        let park_channel = self.settler.open_channel(&connection).await?;
        let tag = format!("ledgerhook-worker-{}", uuid::Uuid::now_v7());
        let mut deliveries = channel
            .basic_consume(
                self.topology.queue.as_str().into(),
                tag.as_str().into(),
                // Manual acks: a message leaves the queue only after its
                // effects are committed.
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .context("starting to consume")?;
        tracing::info!(queue = %self.topology.queue, prefetch, "consuming");
        self.broker_up.store(true, Ordering::Relaxed);

        let slots = Arc::new(Semaphore::new(self.concurrency));
        let mut in_process = JoinSet::new();
        // One watch for the whole session, shared by both waits below (a
        // new one per batch would register a timer per batch).
        let channels = [&channel, &park_channel];
        let closed = amqp::until_closed(&channels);
        tokio::pin!(closed);
        let result = loop {
            // Reap finished tasks so the set does not grow without bound.
            while in_process.try_join_next().is_some() {}
            tokio::select! {
                _ = shutdown.cancelled() => break Ok(()),
                () = until_paused(&mut paused) => {
                    tracing::info!("paused by the operator: finishing what is held, then leaving the broker");
                    break Ok(());
                }
                () = &mut closed => {
                    break Err(anyhow::anyhow!("a channel closed without telling its waiters"));
                }
                next = deliveries.next() => match next {
                    Some(Ok(first)) => {
                        // Wait for a free slot first, so the batch grows meanwhile.
                        // That wait watches the channels too: a batch stuck on
                        // a dead connection must not hold the session forever.
                        let slot = tokio::select! {
                            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
                            () = &mut closed => {
                                break Err(anyhow::anyhow!("a channel closed while every batch slot was busy"));
                            }
                            () = shutdown.cancelled() => break Ok(()),
                            () = until_paused(&mut paused) => break Ok(()),
                        };
                        // Sized in deliveries: a carrier counts for all it holds.
                        let mut size = carrier::count(first.properties.headers().as_ref());
                        let mut batch = vec![first];
                        let mut failed = None;
                        while size < self.batch_size {
                            match deliveries.next().now_or_never() {
                                Some(Some(Ok(delivery))) => {
                                    size += carrier::count(delivery.properties.headers().as_ref());
                                    batch.push(delivery);
                                }
                                Some(Some(Err(e))) => {
                                    failed = Some(e);
                                    break;
                                }
                                _ => break,
                            }
                        }
                        let this = self.clone();
                        let park_channel = park_channel.clone();
                        in_process.spawn(async move {
                            this.handle_batch(batch, &park_channel).await;
                            drop(slot);
                        });
                        if let Some(e) = failed {
                            break Err(anyhow::Error::new(e).context("consuming"));
                        }
                    }
                    Some(Err(e)) => break Err(anyhow::Error::new(e).context("consuming")),
                    None => break Err(anyhow::anyhow!("the broker cancelled the consumer")),
                },
            }
        };

        self.broker_up.store(false, Ordering::Relaxed);
        // Stop taking messages, finish what we hold (within the grace), then
        // close: anything still unacknowledged goes back to the queue.
        amqp::say_goodbye(channel.basic_cancel(tag.as_str().into(), BasicCancelOptions::default()))
            .await;
        let drained = tokio::time::timeout(self.shutdown_grace, async {
            while in_process.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                left = in_process.len(),
                "shutdown grace over; unfinished messages return to the queue"
            );
            in_process.abort_all();
        }
        amqp::say_goodbye(channel.close(200, "OK".into())).await;
        amqp::say_goodbye(connection.close(200, "OK".into())).await;
        result
    }

    /// Processes a batch (in a span listing its delivery ids), then settles
    /// (acknowledges, retries or parks) each message: an AMQP message that
    /// carries several deliveries is acknowledged once all of them are
    /// settled, and returned to the queue whole if any copy failed (those
    /// already applied are then found processed and acknowledged).
    async fn handle_batch(&self, batch: Vec<Delivery>, park_channel: &lapin::Channel) {
        // Each message with the index of the AMQP message that brought it.
        let mut carriers = Vec::new();
        let mut messages: Vec<Message<'_>> = Vec::new();
        for (index, delivery) in batch.iter().enumerate() {
            for message in messages_of(delivery) {
                carriers.push(index);
                messages.push(message);
            }
        }
        let ids: Vec<&str> = messages
            .iter()
            .map(|m| m.delivery_id.unwrap_or("-"))
            .collect();
        let batch_span = tracing::info_span!(
            "batch",
            delivery_ids = %ids.join(","),
            messaging.system = "rabbitmq",
            messaging.operation.type = "process",
            messaging.destination.name = self.topology.exchange.as_str(),
            messaging.batch.message_count = batch.len(),
        );
        let verdicts = self
            .processor
            .process_batch(&messages)
            .instrument(batch_span)
            .await;
        // Copies first, then the parked ones noted on their rows (one
        // statement), then the acks: a parking is noted only once its copy
        // is confirmed (a note before it would make a message returned to
        // the queue look processed), and before its ack (so a worker that
        // dies in between leaves a redelivery, not an unnoted parking).
        let mut settlements = Vec::with_capacity(messages.len());
        for ((&carrier, message), verdict) in carriers.iter().zip(&messages).zip(verdicts) {
            settlements.push(
                self.settler
                    .copy(park_channel, &batch[carrier], message, verdict)
                    .await,
            );
        }
        let parked: Vec<&Parked> = settlements
            .iter()
            .filter_map(|settlement| match settlement {
                Settlement::Parked(parked) => Some(parked),
                _ => None,
            })
            .collect();
        self.processor.note_parked(&parked).await;
        self.processor.note_attempts(&settlements).await;
        // One settlement per AMQP message: returned if any of its
        // deliveries must be, acknowledged otherwise. Its first message
        // speaks for it in the logs.
        let mut first_of = vec![None; batch.len()];
        let mut returned = vec![false; batch.len()];
        for (index, (&carrier, settlement)) in carriers.iter().zip(&settlements).enumerate() {
            first_of[carrier].get_or_insert(index);
            returned[carrier] |= *settlement == Settlement::Return;
        }
        for (carrier, delivery) in batch.iter().enumerate() {
            let Some(first) = first_of[carrier] else {
                continue;
            };
            let settlement = if returned[carrier] {
                &Settlement::Return
            } else {
                &Settlement::Ack
            };
            self.settler
                .finish(delivery, &messages[first], settlement)
                .await;
        }
    }
}

/// Resolves once the switch is on; never, if its watcher is gone.
async fn until_paused(paused: &mut watch::Receiver<bool>) {
    if paused.wait_for(|p| *p).await.is_err() {
        std::future::pending::<()>().await;
    }
}
