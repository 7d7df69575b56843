//! Settling messages: acknowledging them, retrying those that may succeed
//! later (a payment whose order is not known yet) on a schedule kept in
//! RabbitMQ itself, and parking those that never will.
//!
//! A message to retry is published to a wait queue, one per step, whose TTL
//! dead-letters it back to the work queue when its (jittered) delay is over.
//! Waiting therefore holds no worker slot, blocks no other message, and
//! survives a worker restart. After the last attempt the message is parked
//! (the dead-letter queue) with its reason and attempt count.
//!
//! [`RetrySchedule`] is the arithmetic; the [`Settler`] acts on a
//! [`Verdict`]: it counts attempts, turns a retry past the last attempt into
//! parking, copies the message where it goes (confirmed by the broker), and
//! only then acknowledges it. It acts on the broker alone, in two steps
//! ([`Settler::copy`], then [`Settler::finish`]); between them the consumer
//! has the processor note the parkings ([`Parked`]) on their delivery rows.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use lapin::types::{AMQPValue, ShortString};
use lapin::{BasicProperties, Channel, Connection};
use ledgerhook_runtime::amqp::{self, Destination, Topology};
use ledgerhook_runtime::retry::{jittered, random_unit};
use tracing::Instrument as _;

use crate::metrics;
use crate::processor::{Message, Verdict};

/// Pause before returning a message whose retry or parking copy failed.
const COPY_FAILURE_PAUSE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    /// Attempts in all, the first included; at least 1.
    pub attempts: u32,
    /// Wait before the second attempt.
    pub initial: Duration,
    /// Each wait is this many times the previous one.
    pub multiplier: u32,
}

impl RetrySchedule {
    /// Whether a message that has had `attempt` attempts gets another.
    pub fn should_retry(&self, attempt: u32) -> bool {
        attempt < self.attempts
    }

    /// The wait after attempt `attempt` (1-based) failed.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let factor = self.multiplier.saturating_pow(attempt.saturating_sub(1));
        self.initial.saturating_mul(factor)
    }

    /// Every distinct wait the schedule uses, for declaring the wait queues.
    pub fn delays(&self) -> Vec<Duration> {
        let mut delays: Vec<Duration> = (1..self.attempts).map(|a| self.delay_after(a)).collect();
        delays.dedup();
        delays
    }
}

/// How long a message of a provider paused on its own waits before it is
/// looked at again. Long enough that a paused backlog costs the broker
/// little (each message comes round twice a minute), short enough that
/// resuming takes effect within it.
/// The default of `WORKER_DEFER_MS`.
pub const DEFER_DELAY: Duration = Duration::from_secs(30);

/// Acts on verdicts; one per consumer, shared by its batches. Each
/// connection gives it a confirmed channel ([`Settler::open_channel`]) for
/// the copies it makes.
pub struct Settler {
    pub schedule: RetrySchedule,
    pub topology: Topology,
    /// How long a paused provider's message waits before it is looked at
    /// again ([`DEFER_DELAY`] by default).
    pub defer: Duration,
    /// Set once the wait queues are declared: a reconnection does not
    /// declare them again (see `Topology::declare_once`).
    pub waits_declared: AtomicBool,
}

/// What becomes of a message once its copy (if any) is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// Done: acknowledge.
    Ack,
    /// Copied to a wait queue: note the failed attempt, then acknowledge.
    Retried(Failed),
    /// Copied to the parked queue: note it on its row (and the attempt),
    /// then acknowledge.
    Parked(Failed),
    /// Its copy failed: return it to the queue.
    Return,
}

/// A failed attempt whose copy (to a wait queue, or parked) the broker
/// confirmed, to be noted in `delivery_attempts` (and, parked, on its
/// delivery row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub delivery_row: i64,
    /// 1-based.
    pub attempt: u32,
    pub reason: String,
    /// Retries only: the wait before the next attempt.
    pub retry_in: Option<Duration>,
}

/// The name parked messages are noted under.
pub type Parked = Failed;

impl Settler {
    /// Opens the channel retry and parking copies go through (with
    /// publisher confirms) and declares the schedule's wait queues.
    pub async fn open_channel(&self, connection: &Connection) -> anyhow::Result<Channel> {
        let channel = amqp::confirmed_channel(connection)
            .await
            .context("the park channel")?;
        if !self.waits_declared.load(Ordering::Acquire) {
            for delay in self.schedule.delays() {
                self.topology.declare_wait_queue(&channel, delay).await?;
            }
            self.topology
                .declare_wait_queue(&channel, self.defer)
                .await?;
            self.waits_declared.store(true, Ordering::Release);
        }
        Ok(channel)
    }

    /// Copies a processed message where its verdict sends it: to a wait
    /// queue (a retry) or to the parked queue (given up); nothing for one
    /// that is done. Returns what [`Settler::finish`] must then do with it:
    /// acknowledge it, or return it to the queue when its copy failed. The
    /// caller notes the parked ones on their rows between the two, so that
    /// a parking is noted after its copy is confirmed and before its ack.
    ///
    /// What it logs is written in the message's span (which an
    /// acknowledgement without a word never creates).
    pub async fn copy(
        &self,
        channel: &Channel,
        delivery: &Delivery,
        message: &Message<'_>,
        verdict: Verdict,
    ) -> Settlement {
        if let Verdict::Done(_) = verdict {
            return Settlement::Ack;
        }
        self.copy_where_it_goes(channel, delivery, message, verdict)
            .instrument(message.span(None).clone())
            .await
    }

    /// Acknowledges the message, or returns it to the queue after a pause
    /// (so that a broker refusing copies is not hammered).
    pub async fn finish(
        &self,
        delivery: &Delivery,
        message: &Message<'_>,
        settlement: &Settlement,
    ) {
        let settled = match settlement {
            Settlement::Ack | Settlement::Retried(_) | Settlement::Parked(_) => {
                bounded(delivery.ack(BasicAckOptions::default())).await
            }
            Settlement::Return => {
                tokio::time::sleep(COPY_FAILURE_PAUSE).await;
                bounded(delivery.nack(BasicNackOptions {
                    requeue: true,
                    ..Default::default()
                }))
                .await
            }
        };
        if let Err(e) = settled {
            message.span(None).in_scope(|| not_acknowledged(&e));
        }
    }

    /// The copy of a message to retry or park.
    async fn copy_where_it_goes(
        &self,
        channel: &Channel,
        delivery: &Delivery,
        message: &Message<'_>,
        verdict: Verdict,
    ) -> Settlement {
        let attempt = attempt_of(delivery);
        let verdict = match verdict {
            Verdict::Retry { label, reason } if !self.schedule.should_retry(attempt) => {
                Verdict::Park {
                    label,
                    reason: format!("{reason}; gave up after {attempt} attempts"),
                }
            }
            other => other,
        };
        let delivery_row = message.delivery_row;
        let copied = match &verdict {
            Verdict::Done(_) => Ok(None),
            Verdict::Retry { label, reason } => {
                let step = self.schedule.delay_after(attempt);
                let delay = jittered(step, random_unit());
                tracing::info!(
                    label,
                    reason,
                    attempt,
                    ?delay,
                    delivery_row,
                    "retrying later"
                );
                let queue = self.topology.wait_queue(step);
                let copy = self
                    .copy_to(
                        channel,
                        original(delivery, message),
                        &queue,
                        attempt + 1,
                        None,
                        Some(delay),
                    )
                    .await;
                if copy.is_ok() {
                    metrics::retry(label);
                }
                copy.map(|()| {
                    delivery_row.map(|delivery_row| {
                        Settlement::Retried(Failed {
                            delivery_row,
                            attempt,
                            reason: reason.clone(),
                            retry_in: Some(delay),
                        })
                    })
                })
            }
            Verdict::Defer => {
                let queue = self.topology.wait_queue(self.defer);
                // The same attempt number: waiting for a paused provider
                // is not an attempt.
                self.copy_to(
                    channel,
                    original(delivery, message),
                    &queue,
                    attempt,
                    None,
                    Some(self.defer),
                )
                .await
                .map(|()| None)
            }
            Verdict::Park { label, reason } => self
                .park(channel, delivery, message, attempt, label, reason)
                .await
                .map(|parked| parked.map(Settlement::Parked)),
        };
        match copied {
            Ok(Some(settlement)) => settlement,
            Ok(None) => Settlement::Ack,
            Err(e) => {
                // Not copied, so not acknowledged: back to the queue.
                tracing::error!(
                    error = format!("{e:#}"),
                    "could not retry or park a message; returning it to the queue"
                );
                Settlement::Return
            }
        }
    }

    /// Publishes a copy of `original` to `queue` (confirmed by the broker),
    /// with its attempt number and, for a parked copy, the reason.
    async fn copy_to(
        &self,
        channel: &Channel,
        original: Original<'_>,
        queue: &str,
        attempt: u32,
        park_reason: Option<&str>,
        expiration: Option<Duration>,
    ) -> anyhow::Result<()> {
        let Original {
            properties: base,
            body,
        } = original;
        let mut headers = base.headers().clone().unwrap_or_default();
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
        let mut properties = base.with_headers(headers);
        if let Some(expiration) = expiration {
            properties =
                properties.with_expiration(expiration.as_millis().to_string().as_str().into());
        }
        amqp::publish_confirmed(channel, Destination::queue(queue), body, properties)
            .await
            .with_context(|| format!("copying to {queue}"))
    }

    /// Copies the message to the parked queue with its reason, then records
    /// the reason on the delivery row.
    async fn park(
        &self,
        channel: &Channel,
        delivery: &Delivery,
        message: &Message<'_>,
        attempt: u32,
        label: &'static str,
        reason: &str,
    ) -> anyhow::Result<Option<Parked>> {
        let delivery_row = message.delivery_row;
        // The message's span carries its delivery_id.
        tracing::warn!(label, reason, attempt, delivery_row, "parking a message");
        self.copy_to(
            channel,
            original(delivery, message),
            &self.topology.parked_queue,
            attempt,
            Some(reason),
            None,
        )
        .await?;
        metrics::parked(label);
        let provider = message
            .provider
            .map_or("unknown", |p| p.payment_provider().as_str());
        metrics::processed(metrics::PARKED_OUTCOME, provider, None);
        Ok(delivery_row.map(|delivery_row| Parked {
            delivery_row,
            attempt,
            reason: reason.to_owned(),
            retry_in: None,
        }))
    }
}

/// What a copy of a message is made from: the AMQP message itself for a
/// delivery that came alone; for one that came in a carrier, its own body
/// and the headers a single delivery has (it leaves alone).
struct Original<'m> {
    properties: BasicProperties,
    body: &'m [u8],
}

fn original<'m>(delivery: &'m Delivery, message: &Message<'m>) -> Original<'m> {
    match (message.alone, message.delivery_row) {
        (false, Some(row)) => Original {
            properties: amqp::single_delivery_properties(
                row,
                message.provider.map_or_else(|name| name, |p| p.as_str()),
                message.delivery_id.unwrap_or_default(),
                message.received_at_us.unwrap_or_default(),
            ),
            body: message.body,
        },
        _ => Original {
            properties: delivery.properties.clone(),
            body: &delivery.data,
        },
    }
}

/// An acknowledgement (or nack) for at most [`amqp::SETTLE_TIMEOUT`].
async fn bounded<T>(settling: impl Future<Output = lapin::Result<T>>) -> Result<(), String> {
    match tokio::time::timeout(amqp::SETTLE_TIMEOUT, settling).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {:?}", amqp::SETTLE_TIMEOUT)),
    }
}

fn not_acknowledged(error: &str) {
    // The channel is gone; the broker will redeliver, and the delivery
    // row's processed_at makes the second run a no-op.
    tracing::warn!(error, "could not acknowledge a message");
}

/// Which attempt this copy of a message is (the first has no header).
fn attempt_of(delivery: &Delivery) -> u32 {
    amqp::header_i64(delivery.properties.headers().as_ref(), amqp::HEADER_ATTEMPT)
        .and_then(|a| u32::try_from(a).ok())
        .unwrap_or(1)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> RetrySchedule {
        RetrySchedule {
            attempts: 5,
            initial: Duration::from_secs(1),
            multiplier: 4,
        }
    }

    #[test]
    fn waits_grow_by_the_multiplier() {
        let s = schedule();
        assert_eq!(s.delay_after(1), Duration::from_secs(1));
        assert_eq!(s.delay_after(2), Duration::from_secs(4));
        assert_eq!(s.delay_after(4), Duration::from_secs(64));
        assert_eq!(s.delays(), [1, 4, 16, 64].map(Duration::from_secs));
    }

    #[test]
    fn the_last_attempt_gets_no_retry() {
        let s = schedule();
        assert!(s.should_retry(1));
        assert!(s.should_retry(4));
        assert!(!s.should_retry(5));
        let once = RetrySchedule {
            attempts: 1,
            ..schedule()
        };
        assert!(!once.should_retry(1));
        assert!(once.delays().is_empty());
    }

    #[test]
    fn a_jittered_wait_fits_its_wait_queue() {
        // The wait queue's TTL allows for the largest jitter; a message's own
        // expiration must never be longer, or it would leave by the TTL first.
        let s = schedule();
        for attempt in 1..s.attempts {
            let step = s.delay_after(attempt);
            let longest = jittered(step, 0.999_999);
            assert!(longest <= step.mul_f64(1.0 + ledgerhook_runtime::retry::MAX_JITTER));
            assert!(jittered(step, 0.0) >= step.mul_f64(0.9));
        }
    }
}
