//! Everything a batch decided, accumulated in memory and then written in
//! one statement (data-modifying CTEs over arrays). One statement per batch
//! instead of several per delivery is what lets one worker keep up: the
//! per-statement executor work in PostgreSQL was most of the cost.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Applied, StoredOrder, orders};
use crate::credits::book;
use crate::deliveries::processing;
use crate::notifications::outbox;
use ledgerhook_domain::{Decision, EventKind, OrderEvent, OrderStatus, find_bought};
use ledgerhook_domain::{GrantFacts, NotifyChannels};

/// How one order changes in this batch (several events may touch it).
#[derive(Debug)]
struct OrderChange {
    status: OrderStatus,
    review_reason: Option<String>,
    history: Vec<Value>,
    completed: bool,
    chain: Option<String>,
    transaction_hash: Option<String>,
    payment_intent: Option<String>,
}

#[derive(Debug, Default)]
pub struct Changes {
    ledger_users: Vec<String>,
    ledger_credits: Vec<i64>,
    ledger_orders: Vec<Uuid>,
    ledger_deliveries: Vec<i64>,
    /// When what is left of each grant expires (none: never).
    ledger_expiries: Vec<Option<DateTime<Utc>>>,
    /// Sorted, so concurrent batches lock balance rows in the same order.
    balances: BTreeMap<String, i64>,
    orders: BTreeMap<Uuid, OrderChange>,
    event_orders: Vec<Uuid>,
    event_deliveries: Vec<i64>,
    event_types: Vec<String>,
    event_data: Vec<Value>,
    outcome_rows: Vec<i64>,
    outcomes: Vec<&'static str>,
    outcome_details: Vec<Option<String>>,
    /// Which channels announce a grant.
    notify: NotifyChannels,
    /// How long a subscription period's credits outlive the period.
    subscription_grace: chrono::Duration,
    notice_channels: Vec<&'static str>,
    notice_orders: Vec<Uuid>,
    notice_recipients: Vec<Option<String>>,
    notice_facts: Vec<Value>,
}

impl Changes {
    pub fn new(notify: NotifyChannels, subscription_grace: chrono::Duration) -> Self {
        Self {
            notify,
            subscription_grace,
            ..Self::default()
        }
    }

    /// A notification row per configured channel for a grant (the buyer's
    /// email only when the event gave an address).
    fn notify_grant(&mut self, order: &StoredOrder, event: &OrderEvent, credits: i64) {
        if self.notify.is_empty() {
            return;
        }
        let package = find_bought(&order.package_id);
        let payment = event.payment.as_ref();
        let amount = payment
            .and_then(|p| p.amount.ok())
            .or(package.map(|p| p.price))
            .map_or_else(String::new, |a| a.to_string());
        let facts = GrantFacts {
            kind: ledgerhook_domain::NoticeKind::Granted,
            order_id: event.order_id.clone(),
            user_id: order.user_id.clone(),
            package_id: order.package_id.clone(),
            package_name: package.map_or_else(|| order.package_id.clone(), |p| p.name.to_owned()),
            credits,
            amount,
            currency: payment
                .and_then(|p| p.currency.clone())
                .unwrap_or_else(|| order.provider.currency().to_owned()),
        };
        let facts = serde_json::to_value(&facts).expect("plain facts serialise");
        let recipient = event.buyer_email.as_ref();
        for channel in self.notify.for_grant(recipient.is_some()) {
            self.notice_channels.push(channel.as_str());
            self.notice_orders.push(order.id);
            self.notice_recipients.push(
                (channel == ledgerhook_domain::Channel::Email)
                    .then(|| recipient.cloned())
                    .flatten(),
            );
            self.notice_facts.push(facts.clone());
        }
    }

    /// The delivery's outcome, stored with `processed_at`.
    pub fn outcome(&mut self, delivery_row: i64, applied: &Applied) {
        self.outcome_rows.push(delivery_row);
        self.outcomes.push(applied.outcome());
        self.outcome_details.push(detail(applied));
    }

    fn order(&mut self, order: &StoredOrder) -> &mut OrderChange {
        self.orders.entry(order.id).or_insert_with(|| OrderChange {
            status: order.status,
            review_reason: None,
            history: Vec::new(),
            completed: false,
            chain: None,
            transaction_hash: None,
            payment_intent: None,
        })
    }

    fn event(&mut self, order: Uuid, delivery_row: i64, event_type: &str, data: Value) {
        self.event_orders.push(order);
        self.event_deliveries.push(delivery_row);
        self.event_types.push(event_type.to_owned());
        self.event_data.push(data);
    }

    /// Records what `decision` means for `order` (as it stood before it).
    pub fn apply(
        &mut self,
        delivery_row: i64,
        order: &StoredOrder,
        event: &OrderEvent,
        decision: &Decision,
        applied: &Applied,
    ) {
        let now = Utc::now();
        // Money was received under this PaymentIntent whatever the decision
        // (a grant, a hold for review, a payment on a held order), and a
        // refund or dispute will name it. The first one stays.
        if event.kind == EventKind::PaymentSucceeded
            && event.provider == order.provider
            && let Some(intent) = &event.payment_intent
        {
            self.order(order)
                .payment_intent
                .get_or_insert_with(|| intent.clone());
        }
        match decision {
            Decision::Grant { credits, anomaly } => {
                self.ledger_users.push(order.user_id.clone());
                self.ledger_credits.push(*credits);
                self.ledger_orders.push(order.id);
                self.ledger_deliveries.push(delivery_row);
                // A subscription period's credits last until the period
                // ends, and the grace after; a package's by its validity.
                let period_end = event
                    .subscription
                    .as_ref()
                    .and_then(|s| DateTime::from_timestamp(s.period_end, 0));
                self.ledger_expiries.push(match period_end {
                    Some(end) => Some(end + self.subscription_grace),
                    None => order
                        .credits_valid_days
                        .map(|days| now + chrono::Duration::days(days.into())),
                });
                *self.balances.entry(order.user_id.clone()).or_default() += credits;
                self.notify_grant(order, event, *credits);
                let payment = event.payment.as_ref();
                let change = self.order(order);
                change.status = OrderStatus::Completed;
                change.completed = true;
                change.chain = payment.and_then(|p| p.chain.clone());
                change.transaction_hash = payment.and_then(|p| p.transaction_hash.clone());
                change.history.push(json!({"status": OrderStatus::Paid.as_str(), "at": now, "reason": event.event_type}));
                change.history.push(json!({"status": OrderStatus::Completed.as_str(), "at": now, "reason": format!("{credits} credits added")}));
                self.event(
                    order.id,
                    delivery_row,
                    &event.event_type,
                    event_data(event, "grant", *anomaly),
                );
                self.event(
                    order.id,
                    delivery_row,
                    "credits.added",
                    json!({"credits": credits, "userId": order.user_id}),
                );
            }
            Decision::Transition { to } => {
                let change = self.order(order);
                change.status = *to;
                change.history.push(json!({"status": to.as_str(), "at": now, "reason": event.failure_reason.as_deref().unwrap_or(&event.event_type)}));
                self.event(
                    order.id,
                    delivery_row,
                    &event.event_type,
                    event_data(event, "transition", None),
                );
            }
            Decision::Conflict { reason } => {
                let status = order.status;
                let change = self.order(order);
                change.review_reason.get_or_insert_with(|| reason.clone());
                change.history.push(json!({"status": status.as_str(), "at": now, "reason": format!("held for review: {reason}")}));
                self.event(
                    order.id,
                    delivery_row,
                    &event.event_type,
                    event_data(event, "conflict", None),
                );
                self.event(
                    order.id,
                    delivery_row,
                    "review.held",
                    json!({"reason": reason}),
                );
            }
            Decision::Duplicate => {
                self.event(
                    order.id,
                    delivery_row,
                    &event.event_type,
                    event_data(event, "duplicate", None),
                );
            }
            Decision::Record { anomaly } => {
                self.event(
                    order.id,
                    delivery_row,
                    &event.event_type,
                    event_data(event, "record", *anomaly),
                );
            }
        }
        self.outcome(delivery_row, applied);
    }

    /// Writes everything in one statement. The grant rows go in without
    /// `on conflict`: if `credit_ledger_one_grant_per_order` refuses one, the
    /// whole statement fails and nothing is granted (the worker then takes
    /// the deliveries one by one and parks the offending one for a person).
    ///
    /// Its last clause sets each delivery's `processed_at` and outcome, so
    /// that a delivery is marked in the very statement that commits its
    /// effects (the first guard in `ledger`).
    pub async fn write(self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        // No delivery, nothing to write.
        let (Some(&lowest_row), Some(&highest_row)) = (
            self.outcome_rows.iter().min(),
            self.outcome_rows.iter().max(),
        ) else {
            return Ok(());
        };
        let (balance_users, balance_deltas): (Vec<String>, Vec<i64>) =
            self.balances.into_iter().unzip();
        let mut order_ids = Vec::new();
        let mut statuses = Vec::new();
        let mut reviews = Vec::new();
        let mut histories = Vec::new();
        let mut completed = Vec::new();
        let mut chains = Vec::new();
        let mut hashes = Vec::new();
        let mut intents = Vec::new();
        for (id, change) in self.orders {
            order_ids.push(id);
            statuses.push(change.status.as_str());
            reviews.push(change.review_reason);
            histories.push(Value::Array(change.history));
            completed.push(change.completed);
            chains.push(change.chain);
            hashes.push(change.transaction_hash);
            intents.push(change.payment_intent);
        }
        sqlx::query(
            // One statement for the whole batch, each table's part written
            // by its owner: the credit book, the orders, the notifications'
            // outbox, and the deliveries (marked in the statement that
            // commits their effects: the first guard in `ledger`).
            concat!(
                "with ",
                book::batch_grant_ctes!(),
                ", ",
                orders::batch_order_ctes!(),
                ", ",
                outbox::batch_notice_cte!(),
                " ",
                processing::batch_mark_processed!()
            ),
        )
        .bind(&self.ledger_users)
        .bind(&self.ledger_credits)
        .bind(&self.ledger_orders)
        .bind(&self.ledger_deliveries)
        .bind(&balance_users)
        .bind(&balance_deltas)
        .bind(&order_ids)
        .bind(&statuses)
        .bind(&reviews)
        .bind(&histories)
        .bind(&completed)
        .bind(&chains)
        .bind(&hashes)
        .bind(&self.event_orders)
        .bind(&self.event_deliveries)
        .bind(&self.event_types)
        .bind(&self.event_data)
        .bind(&self.outcome_rows)
        .bind(&self.outcomes)
        .bind(&self.outcome_details)
        .bind(&self.ledger_expiries)
        .bind(&self.notice_channels)
        .bind(&self.notice_orders)
        .bind(&self.notice_recipients)
        .bind(&self.notice_facts)
        .bind(&intents)
        .bind(lowest_row)
        .bind(highest_row)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

pub(crate) fn detail(applied: &Applied) -> Option<String> {
    match applied {
        Applied::Conflict { reason, .. } => Some(reason.clone()),
        Applied::Recorded { anomaly, .. } => anomaly.map(str::to_owned),
        Applied::Ignored { reason } => Some((*reason).to_owned()),
        Applied::Granted {
            credits,
            anomaly: None,
            ..
        } => Some(format!("{credits} credits")),
        Applied::Granted {
            credits,
            anomaly: Some(anomaly),
            ..
        } => Some(format!("{credits} credits; {anomaly}")),
        Applied::Reversed {
            kind,
            taken,
            shortfall,
            ..
        } => Some(format!(
            "{}: {taken} credits taken back, {shortfall} short",
            kind.as_str()
        )),
        Applied::AlreadyProcessed | Applied::DuplicateOrder => None,
    }
}

/// What the order's event history keeps about a provider event; the raw
/// bytes stay in `webhook_deliveries`, referenced by `delivery_id`.
fn event_data(event: &OrderEvent, decision: &str, anomaly: Option<&str>) -> Value {
    let payment = event.payment.as_ref();
    json!({
        "decision": decision,
        "anomaly": anomaly,
        "amount": payment.and_then(|p| p.amount.ok()).map(|a| a.to_string()),
        "currency": payment.and_then(|p| p.currency.clone()),
        "chain": payment.and_then(|p| p.chain.clone()),
        "transactionHash": payment.and_then(|p| p.transaction_hash.clone()),
        "failureReason": event.failure_reason,
        "userId": event.user_id,
        "packageId": event.package_id,
    })
}
