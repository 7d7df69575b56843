//! One recorded delivery: what the ingester records and publishes, the
//! relay and the operator republish, and the work queue carries.

use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::Provider;

/// One recorded delivery, as the ingester publishes it, the relay and the
/// operator republish it, and the work queue carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Primary key in `webhook_deliveries`.
    pub row: i64,
    /// Who sent it, which says how to read the body.
    pub provider: Provider,
    /// The sender's delivery id (Svix message id), also the AMQP message id.
    pub delivery_id: String,
    /// When the ingester received it.
    pub received_at: DateTime<Utc>,
    /// The exact bytes that were signed.
    pub body: Bytes,
}

impl Delivery {
    /// When it was received, in microseconds since the Unix epoch (the
    /// work queue's header).
    pub fn received_at_us(&self) -> i64 {
        self.received_at.timestamp_micros()
    }
}
