//! Recorded deliveries: the one owner of the tables `webhook_deliveries`
//! (every verified delivery, exactly as it arrived, and what the worker made
//! of it) and `delivery_outbox` (recorded, not yet confirmed by the broker).
//!
//! Every statement on them lives here, by who needs it:
//! - [`record`]: the ingester records deliveries and their outbox rows;
//! - [`outbox`]: the ingester's publisher and relay empty the outbox;
//! - [`processing`]: the worker locks deliveries, notes parked ones, and
//!   marks a reversal's delivery in the reversal's transaction;
//! - [`operator`]: `ledgerhook-admin` lists, shows and replays them.
//!
//! One exception, on purpose: the worker's grant statement
//! (`ledger::writes`) sets each delivery's `processed_at` and outcome in
//! the same statement as the ledger rows it writes. That is the first of
//! the ledger's three guards (the outcome commits with its effects), and
//! one statement per batch is what keeps the worker fast.

pub mod operator;
pub mod outbox;
pub mod processing;
mod provider;
pub mod record;

pub use provider::Provider;

use bytes::Bytes;
use chrono::{DateTime, Utc};

/// One recorded delivery, as the ingester publishes it, the relay and the
/// operator republish it, and the work queue carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Primary key in `webhook_deliveries`.
    pub row: i64,
    /// Who sent it (a [`Provider`] name), which says how to read the body.
    pub provider: String,
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

/// The columns [`Delivery`] is read from, in its field order.
type DeliveryColumns = (i64, String, String, DateTime<Utc>, Vec<u8>);

impl From<DeliveryColumns> for Delivery {
    fn from((row, provider, delivery_id, received_at, body): DeliveryColumns) -> Self {
        Self {
            row,
            provider,
            delivery_id,
            received_at,
            body: Bytes::from(body),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_read_from_its_columns_keeps_every_field() {
        let received_at = DateTime::from_timestamp_micros(1_763_942_400_123_456).unwrap();
        let delivery = Delivery::from((
            7,
            "crossmint".to_owned(),
            "msg_1".to_owned(),
            received_at,
            b"{}".to_vec(),
        ));
        assert_eq!(delivery.row, 7);
        assert_eq!(delivery.provider, "crossmint");
        assert_eq!(delivery.delivery_id, "msg_1");
        assert_eq!(&delivery.body[..], b"{}");
        assert_eq!(delivery.received_at_us(), 1_763_942_400_123_456);
    }
}
