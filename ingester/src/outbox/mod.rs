//! Getting recorded deliveries onto the queue without ever losing one.
//!
//! The webhook handler answers as soon as the delivery is committed and hands
//! it to the [`publisher`] through a bounded channel without waiting. The
//! publisher pipelines persistent, mandatory publishes with confirms and
//! deletes confirmed rows from `delivery_outbox` (written in the same
//! statement as the delivery). Anything that falls through (channel full,
//! broker down, a nack, a crash) stays in the outbox, and the [`relay`] finds
//! it and publishes it again. A delivery may therefore be
//! published twice; workers are idempotent per delivery, so that is harmless.

pub mod publisher;
pub mod relay;

use axum::body::Bytes;

/// One delivery on its way to the broker.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    /// Primary key in `webhook_deliveries`.
    pub row: i64,
    pub delivery_id: String,
    pub body: Bytes,
    /// When the ingester received it, in microseconds since the epoch.
    pub received_at_us: i64,
}
