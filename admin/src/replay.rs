//! Operator actions on recorded deliveries that need the broker: list and
//! inspect parked (dead letter) deliveries, and replay deliveries by id, by
//! time range, or all parked ones.
//!
//! The database is the source of truth: every delivery ever accepted is in
//! `webhook_deliveries` with its exact bytes. A replay publishes it to the
//! work queue again; a delivery already processed is never republished
//! (its effects are committed), so a replay cannot grant twice. A parked one
//! is reset to unprocessed first, and its copy leaves the parked queue.
//!
//! The SQL on the deliveries is `ledgerhook_store::deliveries::operator`.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use lapin::options::{BasicAckOptions, BasicGetOptions, BasicNackOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use ledgerhook_runtime::amqp::{self, Broker, Topology};
use ledgerhook_store::deliveries::operator;
pub use ledgerhook_store::deliveries::operator::DeliveryRow;
use ledgerhook_store::ledger::orders::events_of_delivery;
use sqlx::PgPool;

/// Which deliveries to replay.
#[derive(Debug, Clone)]
pub enum Selection {
    /// By the sender's delivery ids.
    Ids(Vec<String>),
    /// Received in `[from, to)`.
    Between(DateTime<Utc>, DateTime<Utc>),
    /// Every parked delivery.
    Parked,
    /// By their rows (the console's replay jobs, a batch at a time).
    Rows(Vec<i64>),
}

/// What a replay did with one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Its effects were committed before; nothing was sent again.
    AlreadyProcessed { outcome: String },
    /// It was parked; it is unprocessed again and back on the work queue.
    Redriven,
    /// It was not processed yet; it was (re)published.
    Queued,
    /// No delivery with this id was ever recorded.
    NotFound,
}

#[derive(Debug, Clone)]
pub struct Replayed {
    pub delivery_id: String,
    pub row: Option<i64>,
    pub action: Action,
    /// The outcome after processing, when waited for.
    pub outcome: Option<String>,
}

pub struct Admin {
    pool: PgPool,
    channel: Channel,
    topology: Topology,
    connection: Connection,
}

impl Admin {
    pub async fn connect(
        pool: PgPool,
        broker: &Broker,
        queue_prefix: &str,
    ) -> anyhow::Result<Self> {
        let connection = broker.connect("ledgerhook-admin").await?;
        let channel = amqp::confirmed_channel(&connection).await?;
        let topology = Topology::new(queue_prefix);
        topology.declare(&channel).await?;
        Ok(Self {
            pool,
            channel,
            topology,
            connection,
        })
    }

    /// Leaves the broker (bounded: a dying connection must not hold the
    /// command).
    pub async fn close(self) {
        amqp::say_goodbye(self.channel.close(200, "OK".into())).await;
        amqp::say_goodbye(self.connection.close(200, "OK".into())).await;
    }

    /// Publishes deliveries just recorded (by reconcile) and clears their
    /// outbox rows once confirmed.
    pub async fn publish_recorded(
        &self,
        recorded: &[ledgerhook_domain::Delivery],
    ) -> anyhow::Result<()> {
        ledgerhook_worker::reconcile::publish(&self.pool, &self.channel, &self.topology, recorded)
            .await
    }

    /// Parked deliveries, newest first.
    pub async fn parked(&self, limit: i64) -> anyhow::Result<Vec<DeliveryRow>> {
        Ok(operator::parked(&self.pool, limit).await?)
    }

    /// One delivery, its exact body, and the order events it caused.
    pub async fn show(
        &self,
        delivery_id: &str,
    ) -> anyhow::Result<Option<(DeliveryRow, Vec<u8>, Vec<String>)>> {
        let Some((row, body)) = operator::find(&self.pool, delivery_id).await? else {
            return Ok(None);
        };
        let events: Vec<String> = events_of_delivery(&self.pool, row.id)
            .await?
            .into_iter()
            .map(|line| format!("{} {}", line.head, line.data_text))
            .collect();
        Ok(Some((row, body, events)))
    }

    /// Replays the selected deliveries, then (if `wait` is given) waits up to
    /// that long for each sent one to be processed and reports its outcome.
    pub async fn replay(
        &self,
        selection: &Selection,
        wait: Option<Duration>,
    ) -> anyhow::Result<Vec<Replayed>> {
        let rows = self.select(selection).await?;
        let mut results = Vec::new();
        if let Selection::Ids(ids) = selection {
            let found: HashSet<&str> = rows.iter().map(|r| r.delivery_id.as_str()).collect();
            for id in ids.iter().filter(|id| !found.contains(id.as_str())) {
                results.push(Replayed {
                    delivery_id: id.clone(),
                    row: None,
                    action: Action::NotFound,
                    outcome: None,
                });
            }
        }
        let mut redriven = HashSet::new();
        for row in rows {
            let action = match (row.processed_at, row.outcome.as_deref()) {
                (Some(_), Some("parked")) => {
                    if self.reset_parked(row.id).await? {
                        redriven.insert(row.id);
                        Action::Redriven
                    } else {
                        Action::AlreadyProcessed {
                            outcome: "changed while replaying".into(),
                        }
                    }
                }
                (Some(_), outcome) => Action::AlreadyProcessed {
                    outcome: outcome.unwrap_or("processed").to_owned(),
                },
                (None, _) => Action::Queued,
            };
            if matches!(action, Action::Redriven | Action::Queued) {
                self.publish(row.id).await?;
            }
            results.push(Replayed {
                delivery_id: row.delivery_id,
                row: Some(row.id),
                action,
                outcome: None,
            });
        }
        self.remove_parked_copies(&redriven).await?;
        if let Some(wait) = wait {
            self.wait_for_outcomes(&mut results, wait).await?;
        }
        Ok(results)
    }

    async fn select(&self, selection: &Selection) -> anyhow::Result<Vec<DeliveryRow>> {
        Ok(match selection {
            Selection::Ids(ids) => operator::with_ids(&self.pool, ids).await?,
            Selection::Between(from, to) => {
                operator::received_between(&self.pool, *from, *to).await?
            }
            Selection::Parked => operator::all_parked(&self.pool).await?,
            Selection::Rows(rows) => operator::with_rows(&self.pool, rows).await?,
        })
    }

    /// Makes a parked delivery unprocessed again (only if it is still parked).
    async fn reset_parked(&self, row: i64) -> anyhow::Result<bool> {
        Ok(operator::reset_parked(&self.pool, row).await?)
    }

    async fn publish(&self, row: i64) -> anyhow::Result<()> {
        let delivery = operator::load(&self.pool, row).await?;
        // Waits for the confirm however long the broker takes, as replay
        // always has: the operator sees it finish or interrupts it.
        amqp::publish_delivery(&self.channel, &self.topology, &delivery)
            .await?
            .outcome()
            .await
            .with_context(|| format!("publishing delivery {}", delivery.delivery_id))
    }

    /// Takes the parked queue's copies of redriven deliveries out of it; the
    /// other parked messages stay.
    async fn remove_parked_copies(&self, redriven: &HashSet<i64>) -> anyhow::Result<()> {
        if redriven.is_empty() {
            return Ok(());
        }
        let queue = self.topology.parked_queue.as_str();
        let declared = self
            .channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .context("looking at the parked queue")?;
        // Hold every message unacknowledged while looking, so none comes
        // round twice; then acknowledge the redriven ones, return the rest.
        let mut held = Vec::new();
        for _ in 0..declared.message_count() {
            let Some(message) = self
                .channel
                .basic_get(queue.into(), BasicGetOptions::default())
                .await
                .context("reading the parked queue")?
            else {
                break;
            };
            held.push(message);
        }
        for message in held {
            let row = amqp::header_i64(
                message.delivery.properties.headers().as_ref(),
                amqp::HEADER_DELIVERY_ROW,
            );
            if row.is_some_and(|row| redriven.contains(&row)) {
                message.delivery.ack(BasicAckOptions::default()).await?;
            } else {
                message
                    .delivery
                    .nack(BasicNackOptions {
                        requeue: true,
                        ..Default::default()
                    })
                    .await?;
            }
        }
        Ok(())
    }

    async fn wait_for_outcomes(
        &self,
        results: &mut [Replayed],
        wait: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + wait;
        loop {
            let mut pending = 0;
            for result in results.iter_mut() {
                let (Some(row), Action::Redriven | Action::Queued, None) =
                    (result.row, &result.action, &result.outcome)
                else {
                    continue;
                };
                match operator::outcome(&self.pool, row).await? {
                    Some(outcome) => result.outcome = Some(outcome),
                    None => pending += 1,
                }
            }
            if pending == 0 || Instant::now() > deadline {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
