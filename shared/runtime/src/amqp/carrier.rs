//! A work-queue message that carries several deliveries.
//!
//! RabbitMQ's cost is per message, not per byte: publishing, storing,
//! confirming, delivering and acknowledging a quorum-queue message took
//! about as much of this machine's CPU as everything else a delivery costs.
//! So when the ingester has several recorded deliveries to publish at once,
//! it sends them as one message, a *carrier*: the bodies one after another,
//! and what the single-delivery headers would say as parallel arrays (row,
//! provider, delivery id, receipt time, body length). The worker applies
//! them together and acknowledges the carrier once each of them is settled;
//! a delivery to retry or park leaves as a message of its own (the
//! single-delivery form), so the wait and parked queues never hold carriers.
//!
//! A message without [`HEADER_CARRIED_ROWS`] is one delivery, read the usual
//! way ([`super::HEADER_DELIVERY_ROW`] and the rest).

use std::ops::Range;

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldArray, FieldTable, ShortString};
use ledgerhook_domain::Delivery;

use super::{value_i64, value_str};

/// The carried deliveries' rows; its presence makes a message a carrier.
pub const HEADER_CARRIED_ROWS: &str = "ledgerhook-carried-rows";
/// Their providers (labels, as [`super::HEADER_PROVIDER`]).
pub const HEADER_CARRIED_PROVIDERS: &str = "ledgerhook-carried-providers";
/// Their delivery ids (what a single delivery's message id says).
pub const HEADER_CARRIED_IDS: &str = "ledgerhook-carried-ids";
/// When the ingester received each, in microseconds since the Unix epoch.
pub const HEADER_CARRIED_RECEIVED_AT_US: &str = "ledgerhook-carried-received-at-us";
/// Each body's length in bytes; the bodies follow one another in that order.
pub const HEADER_CARRIED_LENGTHS: &str = "ledgerhook-carried-lengths";

/// The most deliveries one carrier takes: enough to make the broker's
/// per-message cost small per delivery, few enough that a worker's
/// prefetched carriers stay a few megabytes.
pub const MAX_CARRIED: usize = 32;
/// A carrier takes no more deliveries once its bodies reach this size, so a
/// worker's prefetched carriers hold about as many bytes as single
/// deliveries of the largest accepted size would.
pub const MAX_CARRIED_BYTES: usize = 64 * 1024;

/// One delivery inside a carrier, borrowed from the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carried<'m> {
    pub row: i64,
    pub provider: &'m str,
    pub delivery_id: &'m str,
    pub received_at_us: i64,
    /// Where its body lies in the message's body.
    pub body: Range<usize>,
}

/// A carrier whose headers do not describe its body: its deliveries cannot
/// be told apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a carrier message whose headers do not describe its body: {0}")]
pub struct MalformedCarrier(pub &'static str);

/// The body and properties of a carrier for `deliveries` (two or more: one
/// delivery goes alone, in the usual form).
pub fn carrier(deliveries: &[Delivery]) -> (Vec<u8>, BasicProperties) {
    let size = deliveries.iter().map(|d| d.body.len()).sum();
    let mut body = Vec::with_capacity(size);
    let mut rows = FieldArray::default();
    let mut providers = FieldArray::default();
    let mut ids = FieldArray::default();
    let mut received = FieldArray::default();
    let mut lengths = FieldArray::default();
    for delivery in deliveries {
        body.extend_from_slice(&delivery.body);
        rows.push(AMQPValue::LongLongInt(delivery.row));
        providers.push(AMQPValue::LongString(delivery.provider.as_str().into()));
        ids.push(AMQPValue::LongString(delivery.delivery_id.as_str().into()));
        received.push(AMQPValue::LongLongInt(delivery.received_at_us()));
        lengths.push(AMQPValue::LongLongInt(
            i64::try_from(delivery.body.len()).unwrap_or(i64::MAX),
        ));
    }
    let mut headers = FieldTable::default();
    for (name, values) in [
        (HEADER_CARRIED_ROWS, rows),
        (HEADER_CARRIED_PROVIDERS, providers),
        (HEADER_CARRIED_IDS, ids),
        (HEADER_CARRIED_RECEIVED_AT_US, received),
        (HEADER_CARRIED_LENGTHS, lengths),
    ] {
        headers.insert(ShortString::from(name), AMQPValue::FieldArray(values));
    }
    let properties = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_headers(headers);
    (body, properties)
}

/// How many deliveries a message holds (one, unless it is a carrier), read
/// from its headers alone: what the worker counts to size a batch.
pub fn count(headers: Option<&FieldTable>) -> usize {
    match headers.and_then(|h| h.inner().get(HEADER_CARRIED_ROWS)) {
        Some(AMQPValue::FieldArray(rows)) => rows.as_slice().len().max(1),
        _ => 1,
    }
}

/// The deliveries a message carries: `None` for a message of one delivery
/// (no [`HEADER_CARRIED_ROWS`]), an error for a carrier whose headers do
/// not add up (arrays of different lengths, wrong types, lengths that do
/// not cover the body exactly).
pub fn carried<'m>(
    headers: Option<&'m FieldTable>,
    body_len: usize,
) -> Option<Result<Vec<Carried<'m>>, MalformedCarrier>> {
    let table = headers?.inner();
    let rows = table.get(HEADER_CARRIED_ROWS)?;
    Some(read(table, rows, body_len))
}

fn read<'m>(
    table: &'m std::collections::BTreeMap<ShortString, AMQPValue>,
    rows: &'m AMQPValue,
    body_len: usize,
) -> Result<Vec<Carried<'m>>, MalformedCarrier> {
    let array = |value: Option<&'m AMQPValue>, what: &'static str| match value {
        Some(AMQPValue::FieldArray(values)) => Ok(values.as_slice()),
        _ => Err(MalformedCarrier(what)),
    };
    let rows = array(Some(rows), "rows are not an array")?;
    let providers = array(table.get(HEADER_CARRIED_PROVIDERS), "no providers array")?;
    let ids = array(table.get(HEADER_CARRIED_IDS), "no delivery ids array")?;
    let received = array(
        table.get(HEADER_CARRIED_RECEIVED_AT_US),
        "no receipt times array",
    )?;
    let lengths = array(table.get(HEADER_CARRIED_LENGTHS), "no lengths array")?;
    let count = rows.len();
    if count == 0 {
        return Err(MalformedCarrier("carries nothing"));
    }
    if [providers.len(), ids.len(), received.len(), lengths.len()] != [count; 4] {
        return Err(MalformedCarrier("arrays of different lengths"));
    }
    let mut carried = Vec::with_capacity(count);
    let mut start = 0usize;
    for index in 0..count {
        let length = usize::try_from(
            value_i64(&lengths[index]).ok_or(MalformedCarrier("a length is not an integer"))?,
        )
        .map_err(|_| MalformedCarrier("a negative length"))?;
        let end = start
            .checked_add(length)
            .filter(|&end| end <= body_len)
            .ok_or(MalformedCarrier("lengths beyond the body"))?;
        carried.push(Carried {
            row: value_i64(&rows[index]).ok_or(MalformedCarrier("a row is not an integer"))?,
            provider: value_str(&providers[index])
                .ok_or(MalformedCarrier("a provider is not text"))?,
            delivery_id: value_str(&ids[index])
                .ok_or(MalformedCarrier("a delivery id is not text"))?,
            received_at_us: value_i64(&received[index])
                .ok_or(MalformedCarrier("a receipt time is not an integer"))?,
            body: start..end,
        });
        start = end;
    }
    if start != body_len {
        return Err(MalformedCarrier("lengths short of the body"));
    }
    Ok(carried)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use chrono::{TimeZone as _, Utc};
    use lapin::types::LongString;
    use ledgerhook_domain::Provider;

    fn long_string(text: &str) -> AMQPValue {
        AMQPValue::LongString(LongString::from(text))
    }

    fn delivery(row: i64, provider: Provider, body: &str) -> Delivery {
        Delivery {
            row,
            provider,
            delivery_id: format!("msg_{row}"),
            received_at: Utc.timestamp_opt(1_700_000_000 + row, 0).unwrap(),
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn a_carrier_reads_back_as_the_deliveries_it_was_made_of() {
        let deliveries = [
            delivery(7, Provider::Crossmint, r#"{"a":1}"#),
            delivery(8, Provider::Stripe, ""),
            delivery(9, Provider::Crossmint, r#"{"é":"ü"}"#),
        ];
        let (body, properties) = carrier(&deliveries);
        let carried = carried(properties.headers().as_ref(), body.len())
            .expect("a carrier")
            .expect("well formed");
        assert_eq!(carried.len(), 3);
        assert_eq!(count(properties.headers().as_ref()), 3);
        for (one, original) in carried.iter().zip(&deliveries) {
            assert_eq!(one.row, original.row);
            assert_eq!(one.provider, original.provider.as_str());
            assert_eq!(one.delivery_id, original.delivery_id);
            assert_eq!(one.received_at_us, original.received_at_us());
            assert_eq!(&body[one.body.clone()], &original.body[..]);
        }
    }

    #[test]
    fn a_message_without_the_rows_header_is_not_a_carrier() {
        assert_eq!(carried(None, 10), None);
        assert_eq!(carried(Some(&FieldTable::default()), 10), None);
        assert_eq!(count(None), 1);
    }

    #[test]
    fn headers_that_do_not_add_up_are_malformed() {
        let deliveries = [
            delivery(1, Provider::Crossmint, "{}"),
            delivery(2, Provider::Crossmint, "[]"),
        ];
        let (body, properties) = carrier(&deliveries);
        let headers = properties.headers().clone().unwrap();
        // The body one byte longer or shorter than the lengths say.
        assert!(matches!(
            carried(Some(&headers), body.len() + 1),
            Some(Err(_))
        ));
        assert!(matches!(
            carried(Some(&headers), body.len() - 1),
            Some(Err(_))
        ));
        // One array short of an entry.
        let mut short = headers.clone();
        let mut ids = FieldArray::default();
        ids.push(long_string("msg_1"));
        short.insert(HEADER_CARRIED_IDS.into(), AMQPValue::FieldArray(ids));
        assert!(matches!(carried(Some(&short), body.len()), Some(Err(_))));
        // A row that is not a number.
        let mut wrong = headers.clone();
        let mut rows = FieldArray::default();
        rows.push(long_string("one"));
        rows.push(AMQPValue::LongLongInt(2));
        wrong.insert(HEADER_CARRIED_ROWS.into(), AMQPValue::FieldArray(rows));
        assert!(matches!(carried(Some(&wrong), body.len()), Some(Err(_))));
        // A negative length.
        let mut negative = headers;
        let mut lengths = FieldArray::default();
        lengths.push(AMQPValue::LongLongInt(-1));
        lengths.push(AMQPValue::LongLongInt(5));
        negative.insert(
            HEADER_CARRIED_LENGTHS.into(),
            AMQPValue::FieldArray(lengths),
        );
        assert!(matches!(carried(Some(&negative), body.len()), Some(Err(_))));
    }
}
