//! Group commit for incoming deliveries.
//!
//! Each request waits for its delivery to be committed before answering, but
//! requests that arrive together share one INSERT and one commit. The batch
//! forms by itself: while a batch is being written, newcomers queue, and the
//! next batch takes all of them (up to [`MAX_BATCH`]). Under light load a
//! batch is one delivery and nothing waits; under heavy load PostgreSQL does
//! one round trip and one WAL flush for many deliveries instead of one each.
//!
//! Each request's span travels with its delivery: a batch of one is written
//! in that span (so every line it logs, down to the SQL, carries the
//! request id and the delivery id), a larger batch in a `record_batch` span
//! of its own, with the lines about one delivery logged in that delivery's
//! span.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use ledgerhook_domain::{Delivery, Provider};
use ledgerhook_store::deliveries::{self, record::NewDelivery};
use sqlx::PgPool;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tracing::{Instrument as _, Span};

use crate::delivery::{VerifiedDelivery, headers_json};

/// Largest batch: big enough to amortise the round trip, small enough that
/// one batch's statement stays well under a millisecond or two.
const MAX_BATCH: usize = 128;
/// Batches being written at once; a second one forms while the first commits.
const MAX_CONCURRENT_BATCHES: usize = 2;
/// Requests waiting to be batched; beyond this, callers wait (backpressure).
const QUEUE_CAPACITY: usize = 4096;

/// A delivery with the time we received it, ready to record.
pub struct Arrival {
    pub delivery: VerifiedDelivery,
    pub received_at: DateTime<Utc>,
}

impl Arrival {
    fn to_record(&self) -> (Provider, NewDelivery<'_>) {
        let delivery = &self.delivery;
        let record = NewDelivery {
            delivery_id: delivery.delivery_id(),
            body: delivery.body(),
            headers: headers_json(delivery.headers()),
            signed_at: DateTime::from_timestamp(delivery.signed_at(), 0)
                .unwrap_or(self.received_at),
            received_at: self.received_at,
            verified_by: delivery.verified_by(),
        };
        (delivery.provider(), record)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// First time we see this delivery id; `row` is its primary key.
    New { row: i64 },
    /// The sender retried a delivery we already hold.
    Duplicate,
}

#[derive(Debug, thiserror::Error)]
#[error("the delivery could not be recorded")]
pub struct RecordFailed;

type Reply = oneshot::Sender<Result<Recorded, RecordFailed>>;

/// A delivery waiting to be recorded, with the span of the request that
/// brought it.
struct Pending {
    arrival: Arrival,
    reply: Reply,
    span: Span,
}

#[derive(Clone)]
pub struct Recorder {
    requests: mpsc::Sender<Pending>,
}

impl Recorder {
    /// Starts the batching task. New deliveries are handed to `outbox` (without
    /// waiting) once committed.
    pub fn start(pool: PgPool, outbox: mpsc::Sender<Vec<Delivery>>) -> Self {
        let (requests, queue) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(collect(queue, pool, outbox));
        Self { requests }
    }

    /// Durably records the delivery; returns once it is committed. The
    /// writing is logged in the caller's span.
    pub async fn record(&self, arrival: Arrival) -> Result<Recorded, RecordFailed> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Pending {
                arrival,
                reply,
                span: Span::current(),
            })
            .await
            .map_err(|_| RecordFailed)?;
        answer.await.map_err(|_| RecordFailed)?
    }
}

/// Forms batches until every [`Recorder`] is dropped.
async fn collect(
    mut queue: mpsc::Receiver<Pending>,
    pool: PgPool,
    outbox: mpsc::Sender<Vec<Delivery>>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONCURRENT_BATCHES));
    while let Some(first) = queue.recv().await {
        // Wait for a free slot before draining, so the batch grows meanwhile.
        let slot = slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let span = batch_span(&batch);
        let (pool, outbox) = (pool.clone(), outbox.clone());
        tokio::spawn(
            async move {
                write(&pool, &outbox, batch).await;
                drop(slot);
            }
            .instrument(span),
        );
    }
    // Let in-flight batches finish before the outbox sender is dropped.
    let _ = slots.acquire_many(MAX_CONCURRENT_BATCHES as u32).await;
}

/// The span a batch is written in: its request's, for a batch of one.
fn batch_span(batch: &[Pending]) -> Span {
    match batch {
        [only] => only.span.clone(),
        _ => {
            let span = tracing::info_span!(parent: None, "record_batch", deliveries = batch.len());
            for pending in batch {
                span.follows_from(&pending.span);
            }
            span
        }
    }
}

async fn write(pool: &PgPool, outbox: &mpsc::Sender<Vec<Delivery>>, batch: Vec<Pending>) {
    let mut arrivals = Vec::with_capacity(batch.len());
    let mut replies = Vec::with_capacity(batch.len());
    let mut spans = Vec::with_capacity(batch.len());
    for Pending {
        arrival,
        reply,
        span,
    } in batch
    {
        arrivals.push(arrival);
        replies.push(reply);
        spans.push(span);
    }
    // Each with its own provider: one batch may mix Crossmint and Stripe.
    let records: Vec<(Provider, NewDelivery<'_>)> =
        arrivals.iter().map(Arrival::to_record).collect();
    let result = deliveries::record::record_mixed(pool, &records).await;
    drop(records);
    if let Err(e) = &result
        && arrivals.len() > 1
        && !ledgerhook_store::db::is_transient(e)
    {
        // One bad row must not fail its neighbours: retry each alone.
        tracing::warn!(error = %e, "batch refused; recording its deliveries one by one");
        for ((arrival, reply), span) in arrivals.into_iter().zip(replies).zip(spans) {
            let alone = vec![Pending {
                arrival,
                reply,
                span: span.clone(),
            }];
            Box::pin(write(pool, outbox, alone).instrument(span)).await;
        }
        return;
    }
    match result {
        Ok(rows) => {
            let mut new = Vec::with_capacity(rows.len());
            for ((arrival, reply), row) in arrivals.into_iter().zip(replies).zip(rows) {
                let recorded = match row {
                    Some(row) => {
                        let provider = arrival.delivery.provider();
                        let (delivery_id, body) = arrival.delivery.into_id_and_body();
                        new.push(Delivery {
                            row,
                            provider,
                            delivery_id,
                            received_at: arrival.received_at,
                            body,
                        });
                        Recorded::New { row }
                    }
                    None => Recorded::Duplicate,
                };
                let _ = reply.send(Ok(recorded));
            }
            // The batch's new deliveries go to the publisher together (so
            // that they can leave in one carrier). Never wait on the broker:
            // if the publisher is behind or away, the outbox rows stay for
            // the relay.
            if !new.is_empty()
                && let Err(full) = outbox.try_send(new)
            {
                let count = full.into_inner().len();
                tracing::debug!(
                    count,
                    "publisher queue full; leaving the deliveries to the relay"
                );
            }
        }
        Err(e) => {
            tracing::error!(error = %e, count = replies.len(), "could not record deliveries; answering 503 so senders retry");
            for reply in replies {
                let _ = reply.send(Err(RecordFailed));
            }
        }
    }
}
