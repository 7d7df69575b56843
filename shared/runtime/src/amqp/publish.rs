//! The one way anything is published: persistent, mandatory (an unroutable
//! message comes back instead of vanishing), on a channel with publisher
//! confirms, and counted as sent only when the broker acknowledged it
//! without returning it. The ingester's publisher (and through it the
//! outbox relay), the worker's settler (retry and parked copies), replay,
//! redrive and reconcile all publish through here.

use std::time::Duration;

use anyhow::Context as _;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, PublisherConfirm};
use ledgerhook_domain::Delivery;

use super::{
    DELIVERY_ROUTING_KEY, HEADER_DELIVERY_ROW, HEADER_PROVIDER, HEADER_RECEIVED_AT_US,
    SETTLE_TIMEOUT, Topology,
};

/// AMQP delivery mode 2: the broker writes the message to disk.
pub const PERSISTENT: u8 = 2;

/// A new channel on `connection` with publisher confirms on: every publish
/// of a delivery (the ingester's, a retry copy, a replay, a reconciled
/// delivery) is confirmed before anything counts it as sent.
pub async fn confirmed_channel(connection: &Connection) -> anyhow::Result<Channel> {
    let channel = connection
        .create_channel()
        .await
        .context("opening a channel")?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .context("enabling publisher confirms")?;
    Ok(channel)
}

/// Where a message goes: an exchange and routing key, or (the default
/// exchange) a queue by name.
#[derive(Debug, Clone, Copy)]
pub struct Destination<'a> {
    pub exchange: &'a str,
    pub routing_key: &'a str,
}

impl<'a> Destination<'a> {
    /// The work queue's exchange, with the deliveries' routing key.
    pub fn work(topology: &'a Topology) -> Self {
        Self {
            exchange: topology.exchange.as_str(),
            routing_key: DELIVERY_ROUTING_KEY,
        }
    }

    /// Straight to queue `name` (the default exchange).
    pub fn queue(name: &'a str) -> Self {
        Self {
            exchange: "",
            routing_key: name,
        }
    }
}

/// Why a publish does not count as sent.
#[derive(Debug, thiserror::Error)]
pub enum NotPublished {
    /// The broker refused it (a nack: it could not store or route it).
    #[error("the broker refused the message (nack)")]
    Refused,
    /// Unroutable: the broker returned it (no queue bound).
    #[error("the broker returned the message as unroutable")]
    Returned,
    /// The channel has no confirms on: nothing says it arrived.
    #[error("the channel does not confirm publishes")]
    Unconfirmed,
    #[error("no confirm within {0:?}")]
    TimedOut(Duration),
    #[error(transparent)]
    Channel(#[from] lapin::Error),
}

/// A publish handed to the broker, its confirm still to come: await
/// [`PendingConfirm::outcome`], or hold several to pipeline them.
#[must_use = "a publish counts only once its confirm is read"]
pub struct PendingConfirm(PublisherConfirm);

impl PendingConfirm {
    /// The broker's answer, read as sent or not.
    pub async fn outcome(self) -> Result<(), NotPublished> {
        match self.0.await? {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(_)) => Err(NotPublished::Returned),
            Confirmation::Nack(_) => Err(NotPublished::Refused),
            Confirmation::NotRequested => Err(NotPublished::Unconfirmed),
        }
    }
}

/// Hands a message to the broker; the confirm is read from the returned
/// [`PendingConfirm`].
pub async fn start_publish(
    channel: &Channel,
    to: Destination<'_>,
    body: &[u8],
    properties: BasicProperties,
) -> Result<PendingConfirm, NotPublished> {
    let confirm = channel
        .basic_publish(
            to.exchange.into(),
            to.routing_key.into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            body,
            properties.with_delivery_mode(PERSISTENT),
        )
        .await?;
    Ok(PendingConfirm(confirm))
}

/// Publishes and waits for the broker's confirm, at most
/// [`SETTLE_TIMEOUT`] in all.
pub async fn publish_confirmed(
    channel: &Channel,
    to: Destination<'_>,
    body: &[u8],
    properties: BasicProperties,
) -> Result<(), NotPublished> {
    tokio::time::timeout(SETTLE_TIMEOUT, async {
        start_publish(channel, to, body, properties)
            .await?
            .outcome()
            .await
    })
    .await
    .map_err(|_| NotPublished::TimedOut(SETTLE_TIMEOUT))?
}

/// The properties a delivery travels with on the work queue: JSON, the
/// sender's delivery id as the message id, its row, receipt time and
/// provider as headers.
pub fn delivery_properties(delivery: &Delivery) -> BasicProperties {
    single_delivery_properties(
        delivery.row,
        delivery.provider.as_str(),
        &delivery.delivery_id,
        delivery.received_at_us(),
    )
}

/// [`delivery_properties`] from its parts: what a delivery that came in a
/// carrier ([`super::carrier`]) travels with when it leaves alone (a retry
/// or parked copy).
pub fn single_delivery_properties(
    row: i64,
    provider: &str,
    delivery_id: &str,
    received_at_us: i64,
) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert(
        ShortString::from(HEADER_DELIVERY_ROW),
        AMQPValue::LongLongInt(row),
    );
    headers.insert(
        ShortString::from(HEADER_RECEIVED_AT_US),
        AMQPValue::LongLongInt(received_at_us),
    );
    headers.insert(
        ShortString::from(HEADER_PROVIDER),
        AMQPValue::LongString(provider.into()),
    );
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_message_id(delivery_id.into())
        .with_headers(headers)
}

/// Publishes a delivery to the work queue; the caller reads the confirm
/// (the ingester's publisher pipelines them).
pub async fn publish_delivery(
    channel: &Channel,
    topology: &Topology,
    delivery: &Delivery,
) -> Result<PendingConfirm, NotPublished> {
    start_publish(
        channel,
        Destination::work(topology),
        &delivery.body,
        delivery_properties(delivery),
    )
    .await
}

/// Publishes deliveries to the work queue in one message: alone in the
/// usual form when there is one, else in a carrier ([`super::carrier`]; at
/// most [`super::carrier::MAX_CARRIED`], which the caller keeps to). The
/// caller reads the one confirm, which covers them all.
pub async fn publish_deliveries(
    channel: &Channel,
    topology: &Topology,
    deliveries: &[Delivery],
) -> Result<PendingConfirm, NotPublished> {
    match deliveries {
        [one] => publish_delivery(channel, topology, one).await,
        _ => {
            let (body, properties) = super::carrier::carrier(deliveries);
            start_publish(channel, Destination::work(topology), &body, properties).await
        }
    }
}

/// Publishes a delivery to the work queue and waits for its confirm.
pub async fn publish_delivery_confirmed(
    channel: &Channel,
    topology: &Topology,
    delivery: &Delivery,
) -> Result<(), NotPublished> {
    publish_confirmed(
        channel,
        Destination::work(topology),
        &delivery.body,
        delivery_properties(delivery),
    )
    .await
}
