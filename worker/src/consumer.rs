//! Consuming the work queue: manual acks, bounded prefetch, messages applied
//! in batches (one transaction each, a bounded number at once), parking,
//! reconnection, and a graceful stop.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures_util::{FutureExt as _, StreamExt as _};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, Confirmation};
use ledgerhook_shared::amqp::{self, Broker, Topology};
use ledgerhook_shared::ledger;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::metrics;
use crate::processor::{Message, Processor, Verdict};
use crate::retry::RetrySchedule;

const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(10);
/// Pause before returning a message whose retry or parking copy failed.
const COPY_FAILURE_PAUSE: Duration = Duration::from_secs(1);

fn message_of(delivery: &Delivery) -> Message<'_> {
    let headers = delivery.properties.headers().as_ref();
    Message {
        delivery_id: delivery
            .properties
            .message_id()
            .as_ref()
            .map(|id| id.as_str()),
        delivery_row: amqp::header_i64(headers, amqp::HEADER_DELIVERY_ROW),
        received_at_us: amqp::header_i64(headers, amqp::HEADER_RECEIVED_AT_US),
        body: &delivery.data,
    }
}

pub struct Consumer {
    pub broker: Broker,
    pub topology: Topology,
    pub processor: Processor,
    /// Batches (transactions) in process at once.
    pub concurrency: usize,
    /// Most messages applied in one transaction.
    pub batch_size: usize,
    pub retry: RetrySchedule,
    pub shutdown_grace: Duration,
}

impl Consumer {
    /// Consumes until `shutdown`, reconnecting whenever the broker goes away.
    pub async fn run(self, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let mut delay = Duration::from_millis(100);
        loop {
            let started = tokio::time::Instant::now();
            match this.clone().session(&shutdown).await {
                Ok(()) => return,
                // A session that ran a while was healthy: start the delays over.
                Err(e) if started.elapsed() > RECONNECT_MAX_DELAY => {
                    delay = Duration::from_millis(100);
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "consumer lost the broker; reconnecting"
                    );
                }
                Err(e) => tracing::warn!(
                    error = format!("{e:#}"),
                    "consumer lost the broker; reconnecting"
                ),
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.cancelled() => return,
            }
            delay = (delay * 2).min(RECONNECT_MAX_DELAY);
        }
    }

    /// One connection's worth of consuming. Ok when stopped by `shutdown`.
    async fn session(self: Arc<Self>, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let connection = self.broker.connect("ledgerhook-worker").await?;
        let channel = connection
            .create_channel()
            .await
            .context("opening a channel")?;
        self.topology.declare(&channel).await?;
        // Room for every batch slot to be full plus one batch waiting, so work
        // is at hand whenever a batch commits, and few enough that other
        // workers share the queue.
        let prefetch = u16::try_from((self.concurrency + 1) * self.batch_size).unwrap_or(u16::MAX);
        channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await
            .context("setting prefetch")?;
        let park_channel = connection
            .create_channel()
            .await
            .context("opening the park channel")?;
        park_channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .context("enabling confirms on the park channel")?;
        // Copies to the wait queues (retries) and the parked queue go through
        // the confirmed park channel; the wait queues are declared here.
        for delay in self.retry.delays() {
            self.topology.declare_wait_queue(&channel, delay).await?;
        }
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

        let slots = Arc::new(Semaphore::new(self.concurrency));
        let mut in_process = JoinSet::new();
        let mut liveness = tokio::time::interval(amqp::LIVENESS_CHECK);
        let result = loop {
            // Reap finished tasks so the set does not grow without bound.
            while in_process.try_join_next().is_some() {}
            tokio::select! {
                _ = shutdown.cancelled() => break Ok(()),
                _ = liveness.tick() => if !amqp::all_open(&[&channel, &park_channel]) {
                    break Err(anyhow::anyhow!("a channel closed without telling its waiters"));
                },
                next = deliveries.next() => match next {
                    Some(Ok(first)) => {
                        // Wait for a free slot first, so the batch grows meanwhile.
                        let slot = slots.clone().acquire_owned().await.expect("the semaphore is never closed");
                        let mut batch = vec![first];
                        let mut failed = None;
                        while batch.len() < self.batch_size {
                            match deliveries.next().now_or_never() {
                                Some(Some(Ok(delivery))) => batch.push(delivery),
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

    /// Applies a batch in one transaction, acknowledges what it settled, then
    /// takes the rest one by one (with retries).
    async fn handle_batch(&self, batch: Vec<Delivery>, park_channel: &Channel) {
        let messages: Vec<Message<'_>> = batch.iter().map(message_of).collect();
        let verdicts = self.processor.process_batch(&messages).await;
        let mut rest = Vec::new();
        for (index, verdict) in verdicts.into_iter().enumerate() {
            match verdict {
                Some(verdict) => {
                    self.settle(&batch[index], &messages[index], verdict, park_channel)
                        .await
                }
                None => rest.push(index),
            }
        }
        for index in rest {
            let verdict = self.processor.process(&messages[index]).await;
            self.settle(&batch[index], &messages[index], verdict, park_channel)
                .await;
        }
    }

    /// Acknowledges a settled message, after copying it to a wait queue (a
    /// retry) or to the parked queue (given up) where its verdict says so.
    async fn settle(
        &self,
        delivery: &Delivery,
        message: &Message<'_>,
        verdict: Verdict,
        park_channel: &Channel,
    ) {
        let attempt = attempt_of(delivery);
        let verdict = match verdict {
            Verdict::Retry { label, reason } if !self.retry.should_retry(attempt) => {
                Verdict::Park {
                    label,
                    reason: format!("{reason}; gave up after {attempt} attempts"),
                }
            }
            other => other,
        };
        let copied = match &verdict {
            Verdict::Done(_) => Ok(()),
            Verdict::Retry { label, reason } => {
                let delay = RetrySchedule::jittered(self.retry.delay_after(attempt), random_unit());
                tracing::info!(
                    label,
                    reason,
                    attempt,
                    ?delay,
                    delivery_row = message.delivery_row,
                    "retrying later"
                );
                let queue = self.topology.wait_queue(self.retry.delay_after(attempt));
                let copy = self
                    .copy(
                        park_channel,
                        delivery,
                        &queue,
                        attempt + 1,
                        None,
                        Some(delay),
                    )
                    .await;
                if copy.is_ok() {
                    metrics::retry(label);
                }
                copy
            }
            Verdict::Park { label, reason } => {
                self.park(
                    park_channel,
                    delivery,
                    message.delivery_row,
                    attempt,
                    label,
                    reason,
                )
                .await
            }
        };
        let acked = match copied {
            Ok(()) => delivery.ack(BasicAckOptions::default()).await,
            Err(e) => {
                // Not copied, so not acknowledged: back to the queue, after a
                // pause so that a broker refusing copies is not hammered.
                tracing::error!(
                    error = format!("{e:#}"),
                    "could not retry or park a message; returning it to the queue"
                );
                tokio::time::sleep(COPY_FAILURE_PAUSE).await;
                delivery
                    .nack(BasicNackOptions {
                        requeue: true,
                        ..Default::default()
                    })
                    .await
            }
        };
        if let Err(e) = acked {
            // The channel is gone; the broker will redeliver, and the delivery
            // row's processed_at makes the second run a no-op.
            tracing::warn!(error = %e, "could not acknowledge a message");
        }
    }

    /// Publishes a copy of the message to `queue` (confirmed by the broker),
    /// with its attempt number and, for a parked copy, the reason.
    async fn copy(
        &self,
        channel: &Channel,
        delivery: &Delivery,
        queue: &str,
        attempt: u32,
        park_reason: Option<&str>,
        expiration: Option<Duration>,
    ) -> anyhow::Result<()> {
        let mut headers = delivery.properties.headers().clone().unwrap_or_default();
        headers.insert(
            ShortString::from(amqp::HEADER_ATTEMPT),
            AMQPValue::LongLongInt(i64::from(attempt)),
        );
        if let Some(reason) = park_reason {
            headers.insert(
                ShortString::from(amqp::HEADER_PARK_REASON),
                AMQPValue::LongString(reason.into()),
            );
        }
        let mut properties = delivery
            .properties
            .clone()
            .with_headers(headers)
            .with_delivery_mode(2);
        if let Some(expiration) = expiration {
            properties =
                properties.with_expiration(expiration.as_millis().to_string().as_str().into());
        }
        let confirmation = channel
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                &delivery.data,
                properties,
            )
            .await
            .with_context(|| format!("publishing to {queue}"))?
            .await
            .with_context(|| format!("awaiting {queue}'s confirm"))?;
        if !matches!(confirmation, Confirmation::Ack(None)) {
            anyhow::bail!("{queue} did not accept the message: {confirmation:?}");
        }
        Ok(())
    }

    /// Copies the message to the parked queue with its reason, then records
    /// the reason on the delivery row.
    async fn park(
        &self,
        channel: &Channel,
        delivery: &Delivery,
        delivery_row: Option<i64>,
        attempt: u32,
        label: &'static str,
        reason: &str,
    ) -> anyhow::Result<()> {
        tracing::warn!(label, reason, attempt, delivery_id = ?delivery.properties.message_id(), delivery_row, "parking a message");
        self.copy(
            channel,
            delivery,
            &self.topology.parked_queue,
            attempt,
            Some(reason),
            None,
        )
        .await?;
        if let Some(row) = delivery_row
            && let Err(e) = ledger::mark_parked(&self.processor.pool, row, reason).await
        {
            // The parked queue holds it; the row just lacks the note.
            tracing::warn!(error = %e, row, "could not note the parking on the delivery row");
        }
        metrics::parked(label);
        metrics::processed("parked", None);
        Ok(())
    }
}

/// Which attempt this copy of a message is (the first has no header).
fn attempt_of(delivery: &Delivery) -> u32 {
    amqp::header_i64(delivery.properties.headers().as_ref(), amqp::HEADER_ATTEMPT)
        .and_then(|a| u32::try_from(a).ok())
        .unwrap_or(1)
        .max(1)
}

/// A random number in [0, 1) for jitter, from a v4 UUID's random bits.
fn random_unit() -> f64 {
    let (bits, _) = uuid::Uuid::new_v4().as_u64_pair();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}
