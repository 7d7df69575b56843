//! Recorded deliveries: the one owner of the tables `webhook_deliveries`
//! (partitioned by month), `delivery_keys` (each sender's id, unique across
//! months, kept for ever), `delivery_attempts`
//! (every verified delivery, exactly as it arrived, and what the worker made
//! of it) and `delivery_outbox` (recorded, not yet confirmed by the broker).
//!
//! Every statement on them lives here, by who needs it:
//! - [`record`]: the ingester records deliveries and their outbox rows;
//! - [`outbox`]: the ingester's publisher and relay empty the outbox;
//! - [`processing`]: the worker locks deliveries, notes parked ones, and
//!   marks a reversal's delivery in the reversal's transaction;
//! - [`operator`]: `ledgerhook-admin` lists, shows and replays them;
//! - [`browse`]: the console lists them in pages and shows one whole;
//! - [`attempts`]: `delivery_attempts`, each failed processing attempt
//!   (the worker writes, the console reads);
//! - [`partitions`]: the months' partitions, made ahead and dropped once
//!   scrubbed; [`scrub`]: dropping bodies and headers, keeping their hash
//!   (retention and erasure).
//!
//! One exception, on purpose: the worker's grant statement
//! (`ledger::writes`) sets each delivery's `processed_at` and outcome in
//! the same statement as the ledger rows it writes. That is the first of
//! the ledger's three guards (the outcome commits with its effects), and
//! one statement per batch is what keeps the worker fast.

pub mod attempts;
pub mod browse;
pub mod operator;
pub mod outbox;
pub mod partitions;
pub mod processing;
pub mod record;
pub mod scrub;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use ledgerhook_domain::{Delivery, Provider};

/// The columns [`Delivery`] is read from, in its field order.
pub(crate) type DeliveryColumns = (i64, String, String, DateTime<Utc>, Vec<u8>);

/// A [`Delivery`] from its columns; a provider name this build does not
/// know (a row from a newer ingester) is an error, not a guess.
pub(crate) fn from_columns(
    (row, provider, delivery_id, received_at, body): DeliveryColumns,
) -> Result<Delivery, sqlx::Error> {
    let provider = Provider::from_name(&provider).ok_or_else(|| {
        sqlx::Error::Decode(
            format!("delivery row {row} names unknown provider {provider:?}").into(),
        )
    })?;
    Ok(Delivery {
        row,
        provider,
        delivery_id,
        received_at,
        body: Bytes::from(body),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_read_from_its_columns_keeps_every_field() {
        let received_at = DateTime::from_timestamp_micros(1_763_942_400_123_456).unwrap();
        let delivery = from_columns((
            7,
            "crossmint".to_owned(),
            "msg_1".to_owned(),
            received_at,
            b"{}".to_vec(),
        ))
        .unwrap();
        assert_eq!(delivery.row, 7);
        assert_eq!(delivery.provider, Provider::Crossmint);
        assert_eq!(delivery.delivery_id, "msg_1");
        assert_eq!(&delivery.body[..], b"{}");
        assert_eq!(delivery.received_at_us(), 1_763_942_400_123_456);
        let unknown = (
            7,
            "paypal".to_owned(),
            "msg_1".to_owned(),
            received_at,
            Vec::new(),
        );
        assert!(from_columns(unknown).is_err());
    }
}
