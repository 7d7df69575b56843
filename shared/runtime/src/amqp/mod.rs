//! RabbitMQ: names, topology and the message contract between the ingester
//! and the workers; [`publish`] is the one way to publish with confirms.
//!
//! Every exchange and queue name derives from `QUEUE_PREFIX`, so several
//! deployments, or several test runs, share one broker without touching each
//! other.

pub mod carrier;
mod publish;

pub use publish::{
    Destination, NotPublished, PERSISTENT, PendingConfirm, confirmed_channel, delivery_properties,
    publish_confirmed, publish_deliveries, publish_delivery, publish_delivery_confirmed,
    single_delivery_properties, start_publish,
};

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::tcp::OwnedTLSConfig;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, Connection, ConnectionProperties, DefaultConnectionBuilder, ExchangeKind};

use crate::ca_file::CaFile;
use crate::config::{DEFAULT_AMQP_URL, EnvReader};
use crate::retry::MAX_JITTER;

/// Routing key of verified deliveries on the deliveries exchange.
pub const DELIVERY_ROUTING_KEY: &str = "delivery";

/// AMQP header: the delivery's primary key in `webhook_deliveries`.
pub const HEADER_DELIVERY_ROW: &str = "ledgerhook-delivery-row";
/// Who the delivery came from (a `deliveries::Provider` name), so the worker
/// reads the body with the right parser. Messages without it are Crossmint
/// webhooks (published before the header existed).
pub const HEADER_PROVIDER: &str = "ledgerhook-provider";
/// AMQP header: when the ingester received the delivery, in microseconds
/// since the Unix epoch; the worker measures delivery-to-credit latency from it.
pub const HEADER_RECEIVED_AT_US: &str = "ledgerhook-received-at-us";
/// AMQP header on parked messages: why the worker gave up on it.
pub const HEADER_PARK_REASON: &str = "ledgerhook-park-reason";
/// AMQP header: which attempt at processing this copy is (absent means 1).
pub const HEADER_ATTEMPT: &str = "ledgerhook-attempt";

#[derive(Debug, Clone)]
pub struct Topology {
    /// Direct exchange the ingester publishes verified deliveries to.
    pub exchange: String,
    /// Work queue the workers consume.
    pub queue: String,
    /// The dead-letter queue: messages a worker gave up on, kept with their
    /// reason and attempt count for a person (`ledgerhook-admin`).
    pub parked_queue: String,
    prefix: String,
    /// Set once [`Topology::declare_once`] has declared (shared by clones).
    declared: Arc<AtomicBool>,
}

impl Topology {
    pub fn new(prefix: &str) -> Self {
        Self {
            exchange: format!("{prefix}.deliveries"),
            queue: format!("{prefix}.deliveries"),
            parked_queue: format!("{prefix}.parked"),
            prefix: prefix.to_owned(),
            declared: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The wait queue for one retry delay. Named by its delay, so a changed
    /// schedule declares new queues instead of clashing with the old ones.
    pub fn wait_queue(&self, delay: Duration) -> String {
        format!("{}.wait.{}ms", self.prefix, delay.as_millis())
    }

    /// Declares the wait queue for `delay`: messages sit there until their
    /// time is up, then dead-letter back to the work queue.
    pub async fn declare_wait_queue(
        &self,
        channel: &Channel,
        delay: Duration,
    ) -> anyhow::Result<String> {
        let name = self.wait_queue(delay);
        let mut arguments = quorum_arguments();
        let mut set = |key: &str, value: AMQPValue| {
            arguments.insert(ShortString::from(key), value);
        };
        // The queue's TTL is the longest a message waits; each message's own
        // expiration (the jittered delay) is shorter.
        let ttl =
            i64::try_from(delay.mul_f64(1.0 + MAX_JITTER).as_millis()).unwrap_or(i64::MAX) + 1;
        set("x-message-ttl", AMQPValue::LongLongInt(ttl));
        set(
            "x-dead-letter-exchange",
            AMQPValue::LongString(self.exchange.as_str().into()),
        );
        set(
            "x-dead-letter-routing-key",
            AMQPValue::LongString(DELIVERY_ROUTING_KEY.into()),
        );
        // At-least-once dead-lettering: a message leaves the wait queue only
        // once the work queue has confirmed it (requires reject-publish).
        set(
            "x-dead-letter-strategy",
            AMQPValue::LongString("at-least-once".into()),
        );
        set("x-overflow", AMQPValue::LongString("reject-publish".into()));
        channel
            .queue_declare(name.as_str().into(), durable_queue(), arguments)
            .await
            .with_context(|| format!("declaring wait queue {name}"))?;
        Ok(name)
    }

    /// Declares everything once per process (this topology and its
    /// clones): the first successful call declares, later ones return at
    /// once. A reconnection then does not declare again: on a cluster whose
    /// queue leader hangs, a `queue.bind` waits on that leader, and a
    /// reconnection must not wait with it. (Deleted queues come back when
    /// a process starts, or with `ledgerhook-admin migrate`.)
    pub async fn declare_once(&self, channel: &Channel) -> anyhow::Result<()> {
        if self.declared.load(Ordering::Acquire) {
            return Ok(());
        }
        self.declare(channel).await?;
        self.declared.store(true, Ordering::Release);
        Ok(())
    }

    /// Declares everything; idempotent, so every process may call it, and
    /// none depends on another having started.
    pub async fn declare(&self, channel: &Channel) -> anyhow::Result<()> {
        channel
            .exchange_declare(
                self.exchange.as_str().into(),
                ExchangeKind::Direct,
                // Durable: the binding must survive a broker restart, or
                // mandatory publishes would come back unroutable.
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .context("declaring the deliveries exchange")?;
        for queue in [&self.queue, &self.parked_queue] {
            channel
                .queue_declare(queue.as_str().into(), durable_queue(), quorum_arguments())
                .await
                .with_context(|| format!("declaring queue {queue}"))?;
        }
        channel
            .queue_bind(
                self.queue.as_str().into(),
                self.exchange.as_str().into(),
                DELIVERY_ROUTING_KEY.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .context("binding the work queue")?;
        Ok(())
    }
}

fn durable_queue() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..Default::default()
    }
}

/// Quorum queues: replicated, always durable, and here about twice as fast
/// as a classic queue for persistent publishes with confirms.
fn quorum_arguments() -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments.insert(
        ShortString::from("x-queue-type"),
        AMQPValue::LongString("quorum".into()),
    );
    arguments
}

/// Where the broker is: one node or several (a cluster), and for `amqps://`
/// which CAs to trust besides the system's roots (`AMQP_CA_FILE`; the
/// system's roots honour `SSL_CERT_FILE` and `SSL_CERT_DIR`). lapin has no
/// URL parameter for a CA file, hence the variable.
///
/// Several URLs (`AMQP_URL` comma-separated) are tried from a random one
/// on, each attempt bounded by the connect timeout (lapin has none of its
/// own), so processes spread over a cluster's nodes and a dead node costs
/// one timeout, not a hang. Every URL gets a short heartbeat unless it sets
/// its own: a node that stops answering is noticed in seconds, not after
/// the broker's default of a minute.
#[derive(Clone)]
pub struct Broker {
    urls: Vec<String>,
    ca: Option<CaFile>,
    connect_timeout: Duration,
}

/// `AMQP_HEARTBEAT_SECS`' default: a silent connection is dead after two
/// missed heartbeats, about ten seconds.
pub const DEFAULT_HEARTBEAT_SECS: u16 = 5;
/// `AMQP_CONNECT_TIMEOUT_MS`' default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl Broker {
    /// `urls`: one AMQP URL, or several separated by commas.
    pub fn new(urls: impl Into<String>, ca: Option<CaFile>) -> Self {
        Self::with_settings(urls, ca, DEFAULT_HEARTBEAT_SECS, DEFAULT_CONNECT_TIMEOUT)
    }

    pub fn with_settings(
        urls: impl Into<String>,
        ca: Option<CaFile>,
        heartbeat_secs: u16,
        connect_timeout: Duration,
    ) -> Self {
        let urls = urls
            .into()
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(|url| with_heartbeat(url, heartbeat_secs))
            .collect();
        Self {
            urls,
            ca,
            connect_timeout,
        }
    }

    /// `AMQP_URL` (default: the local broker; several comma-separated for a
    /// cluster), `AMQP_CA_FILE` (checked at start), `AMQP_HEARTBEAT_SECS`
    /// (default 5) and `AMQP_CONNECT_TIMEOUT_MS` (default 5000), as every
    /// process that talks to the broker reads them.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &mut EnvReader<F>) -> Self {
        let urls = env.or_default("AMQP_URL", DEFAULT_AMQP_URL);
        let ca = CaFile::from_env(env, "AMQP_CA_FILE");
        let heartbeat = env.parsed_or("AMQP_HEARTBEAT_SECS", DEFAULT_HEARTBEAT_SECS);
        let timeout_ms: u64 = env.parsed_or(
            "AMQP_CONNECT_TIMEOUT_MS",
            u64::try_from(DEFAULT_CONNECT_TIMEOUT.as_millis()).unwrap_or(5000),
        );
        if timeout_ms < 100 {
            env.invalid("AMQP_CONNECT_TIMEOUT_MS must be at least 100".into());
        }
        let broker = Self::with_settings(urls, ca, heartbeat, Duration::from_millis(timeout_ms));
        if broker.urls.is_empty() {
            env.invalid("AMQP_URL names no broker".into());
        }
        broker
    }

    /// How many nodes the URLs name.
    pub fn nodes(&self) -> usize {
        self.urls.len()
    }

    /// One connection, named `name` in the broker's connection list: to the
    /// first node, from a random one on, that answers within the connect
    /// timeout.
    pub async fn connect(&self, name: &str) -> anyhow::Result<Connection> {
        let start = (crate::retry::random_unit() * self.urls.len() as f64) as usize;
        let mut last = None;
        for offset in 0..self.urls.len() {
            let url = &self.urls[(start + offset) % self.urls.len()];
            match tokio::time::timeout(self.connect_timeout, self.connect_to(url, name)).await {
                Ok(Ok(connection)) => return Ok(connection),
                Ok(Err(e)) => last = Some(e),
                Err(_) => {
                    last = Some(anyhow::anyhow!(
                        "no answer within {:?} from {}",
                        self.connect_timeout,
                        without_password(url)
                    ));
                }
            }
        }
        Err(last
            .unwrap_or_else(|| anyhow::anyhow!("AMQP_URL names no broker"))
            .context(format!(
                "connecting to RabbitMQ ({} node(s) tried)",
                self.urls.len()
            )))
    }

    async fn connect_to(&self, url: &str, name: &str) -> anyhow::Result<Connection> {
        let properties = ConnectionProperties::default().with_connection_name(name.into());
        let mut builder = DefaultConnectionBuilder::new()
            .context("finding the async runtime for lapin")?
            .with_uri_str(url.to_owned())
            .with_properties(properties);
        if let Some(ca) = &self.ca {
            // Added to the system's roots, not instead of them.
            builder = builder.with_tls_config(OwnedTLSConfig {
                identity: None,
                cert_chain: Some(ca.pem().to_owned()),
            });
        }
        builder
            .connect()
            .await
            .with_context(|| format!("connecting to {}", without_password(url)))
    }
}

/// `url` with `heartbeat=SECS` in its query, unless it names its own.
fn with_heartbeat(url: &str, heartbeat_secs: u16) -> String {
    if url.contains("heartbeat=") {
        return url.to_owned();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}heartbeat={heartbeat_secs}")
}

/// Without the URL's password.
impl fmt::Debug for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let urls: Vec<String> = self.urls.iter().map(|url| without_password(url)).collect();
        f.debug_struct("Broker")
            .field("urls", &urls)
            .field("ca", &self.ca)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _)) => format!(
                "{scheme}://{user}:[redacted]@{host}{}",
                &rest[authority_end..]
            ),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// How long a goodbye to the broker may take. lapin sends a close (or a
/// consumer cancel) and waits for the broker's reply; if the connection dies
/// at that moment the reply never comes and the wait never ends. CI once saw
/// a broker restart leave the ingester and the worker both stuck there, so
/// every goodbye is bounded. Walking away is safe: unacknowledged messages
/// return to the queue and unconfirmed publishes stay in the outbox.
pub const GOODBYE_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs a goodbye (close, cancel) for at most [`GOODBYE_TIMEOUT`], ignoring
/// its outcome: the link is being abandoned either way.
pub async fn say_goodbye<T>(goodbye: impl Future<Output = T>) {
    if tokio::time::timeout(GOODBYE_TIMEOUT, goodbye)
        .await
        .is_err()
    {
        tracing::debug!("the broker did not answer a goodbye; abandoning the link");
    }
}

/// How often a long wait on the broker (a consumer waiting for messages, a
/// publisher waiting for work) checks that its channel is still open. lapin
/// normally reports a lost connection through the waits themselves; this
/// catches the rare loss that it reports nowhere, instead of waiting forever.
pub const LIVENESS_CHECK: Duration = Duration::from_secs(1);

/// Whether every channel is still open, for the [`LIVENESS_CHECK`].
fn all_open(channels: &[&Channel]) -> bool {
    channels.iter().all(|channel| channel.status().connected())
}

/// Resolves once one of the channels is no longer open, looking every
/// [`LIVENESS_CHECK`]: a branch for any wait that must not outlive them.
pub async fn until_closed(channels: &[&Channel]) {
    let mut tick = tokio::time::interval(LIVENESS_CHECK);
    loop {
        tick.tick().await;
        if !all_open(channels) {
            return;
        }
    }
}

/// How long an acknowledgement or a confirmed copy may take. lapin waits
/// for the frame to be written (and for a copy, for the broker's confirm);
/// on a connection that died under it that wait may never end, and a task
/// stuck there holds a worker's batch slot. A message not acknowledged in
/// time comes again once the connection is gone, and processing it again
/// changes nothing.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// A broker trusted through the system's roots alone (tests, tools).
pub async fn connect(url: &str, name: &str) -> anyhow::Result<Connection> {
    Broker::new(url, None).connect(name).await
}

/// Reads an integer header, whatever integer width the sender used.
pub fn header_i64(headers: Option<&FieldTable>, name: &str) -> Option<i64> {
    value_i64(headers?.inner().get(name)?)
}

/// Reads a text header (a long or short string of UTF-8).
pub fn header_str<'h>(headers: Option<&'h FieldTable>, name: &str) -> Option<&'h str> {
    value_str(headers?.inner().get(name)?)
}

/// An integer value (a header's, or an array's entry), whatever its width.
fn value_i64(value: &AMQPValue) -> Option<i64> {
    match value {
        AMQPValue::LongLongInt(v) => Some(*v),
        AMQPValue::LongInt(v) => Some(i64::from(*v)),
        AMQPValue::Timestamp(v) => i64::try_from(*v).ok(),
        _ => None,
    }
}

/// A text value (a header's, or an array's entry): a long or short string
/// of UTF-8.
fn value_str(value: &AMQPValue) -> Option<&str> {
    match value {
        AMQPValue::LongString(v) => std::str::from_utf8(v.as_bytes()).ok(),
        AMQPValue::ShortString(v) => Some(v.as_str()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_brokers_debug_text_hides_the_password() {
        let broker = Broker::new("amqps://ledger:s3cret@mq.internal:5671/%2f", None);
        let text = format!("{broker:?}");
        assert!(!text.contains("s3cret"), "{text}");
        assert!(
            text.contains("amqps://ledger:[redacted]@mq.internal:5671/%2f"),
            "{text}"
        );
    }

    #[test]
    fn several_urls_each_get_a_heartbeat_unless_they_name_one() {
        let broker = Broker::new(
            " amqp://a:5672/%2f, amqp://b:5672/%2f?frame_max=8192 ,,amqp://c/%2f?heartbeat=30",
            None,
        );
        assert_eq!(
            broker.urls,
            [
                "amqp://a:5672/%2f?heartbeat=5",
                "amqp://b:5672/%2f?frame_max=8192&heartbeat=5",
                "amqp://c/%2f?heartbeat=30",
            ]
        );
        assert_eq!(broker.nodes(), 3);
    }

    #[test]
    fn an_empty_list_or_a_tiny_connect_timeout_stops_start_up() {
        let mut env = EnvReader::new(|name: &str| match name {
            "AMQP_URL" => Some(" , ".to_owned()),
            "AMQP_CONNECT_TIMEOUT_MS" => Some("5".to_owned()),
            _ => None,
        });
        Broker::from_env(&mut env);
        let error = env.finish().unwrap_err().to_string();
        assert!(error.contains("AMQP_URL names no broker"), "{error}");
        assert!(error.contains("AMQP_CONNECT_TIMEOUT_MS"), "{error}");
    }

    #[tokio::test]
    async fn a_node_that_refuses_is_skipped_and_all_refusing_is_one_error() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let broker = Broker::with_settings(
            format!("amqp://127.0.0.1:{port}/%2f,amqp://127.0.0.1:{port}/%2f"),
            None,
            5,
            Duration::from_millis(500),
        );
        let error = format!("{:#}", broker.connect("test").await.unwrap_err());
        assert!(error.contains("2 node(s) tried"), "{error}");
    }
}
