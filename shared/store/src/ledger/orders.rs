//! Orders (`payment_orders`, with their events in `payment_order_events`):
//! the only module whose statements write them. Recording them pending,
//! finding the orders a batch is about, locked for the transaction,
//! expiring the ones nobody paid in time, completing one by hand and
//! recording a take-back on one; and the batch grant's order part
//! ([`batch_order_ctes!`], composed by `ledger::writes` into its one
//! statement).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use ledgerhook_domain::{
    CreditTerms, OrderEvent, OrderStatus, Package, PaymentProvider, find_bought,
};

/// The batch grant's common table expressions on orders: `orders` (each
/// changed order's status, review, history, payment facts: `$7` ids, `$8`
/// statuses, `$9` review reasons, `$10` histories, `$11` completed, `$12`
/// chains, `$13` transaction hashes, `$26` payment ids) and `events` (`$14`
/// orders, `$15` deliveries, `$16` types, `$17` data).
macro_rules! batch_order_ctes {
    () => {
        "orders as (
             update payment_orders o
             set status = c.status,
                 review_reason = coalesce(o.review_reason, c.review_reason),
                 status_history = o.status_history || c.history,
                 paid_at = case when c.completed then coalesce(o.paid_at, now()) else o.paid_at end,
                 completed_at = case when c.completed then now() else o.completed_at end,
                 chain_used = coalesce(c.chain, o.chain_used),
                 transaction_hash = coalesce(c.tx_hash, o.transaction_hash),
                 payment_intent = coalesce(o.payment_intent, c.payment_intent),
                 updated_at = now()
             from unnest($7::uuid[], $8::text[], $9::text[], $10::jsonb[], $11::bool[],
                         $12::text[], $13::text[], $26::text[])
                  as c(id, status, review_reason, history, completed, chain, tx_hash,
                       payment_intent)
             where o.id = c.id
         ), events as (
             insert into payment_order_events (order_id, delivery_id, event_type, event_data)
             select * from unnest($14::uuid[], $15::int8[], $16::text[], $17::jsonb[])
         )"
    };
}
pub(crate) use batch_order_ctes;

/// Who recorded an order, before its payment or from the payment itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreatedFrom {
    /// The API, when the buyer started the purchase.
    Api,
    /// The worker, from a payment event's metadata (`userId`, `packageId`)
    /// for an order the API had not recorded (yet).
    Webhook,
}

impl CreatedFrom {
    /// The value stored in `payment_orders.created_from`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Webhook => "webhook",
        }
    }

    /// The reason given in the first entry of the order's status history.
    fn reason(self) -> &'static str {
        match self {
            Self::Api => "order created",
            Self::Webhook => "created from webhook metadata",
        }
    }
}

/// An order to record as pending: who buys which package, on what terms.
#[derive(Debug, Clone, Copy)]
pub struct PendingOrder<'a> {
    /// Who takes the payment; the order's currency follows from it.
    pub provider: PaymentProvider,
    /// The order's id at its provider.
    pub provider_order_id: &'a str,
    pub user_id: &'a str,
    pub package: &'a Package,
    /// Days the credits stay valid after the grant (none: forever). Fixed
    /// now, so a later change of policy never changes what was bought.
    pub credits_valid_days: Option<i32>,
    /// The Stripe subscription this order is one period of, if any.
    pub subscription_id: Option<&'a str>,
}

/// Records orders as pending, in one statement: the package as it is now
/// (its snapshot, with the credit validity), the expected price and the
/// credits. An order whose provider id is already recorded is left as it
/// is. Rows are inserted in provider-id order, so that concurrent inserts
/// take their locks in the same order. Returns the provider ids of the
/// orders this call created.
pub async fn insert_pending<'e>(
    executor: impl PgExecutor<'e>,
    created_from: CreatedFrom,
    orders: &[PendingOrder<'_>],
) -> Result<Vec<String>, sqlx::Error> {
    let mut orders: Vec<&PendingOrder<'_>> = orders.iter().collect();
    orders.sort_by_key(|o| o.provider_order_id);
    orders.dedup_by_key(|o| o.provider_order_id);
    let mut ids = Vec::with_capacity(orders.len());
    let mut order_ids = Vec::with_capacity(orders.len());
    let mut users = Vec::with_capacity(orders.len());
    let mut packages = Vec::with_capacity(orders.len());
    let mut snapshots = Vec::with_capacity(orders.len());
    let mut prices = Vec::with_capacity(orders.len());
    let mut base = Vec::with_capacity(orders.len());
    let mut bonus = Vec::with_capacity(orders.len());
    let mut valid_days = Vec::with_capacity(orders.len());
    let mut providers = Vec::with_capacity(orders.len());
    let mut currencies = Vec::with_capacity(orders.len());
    let mut subscriptions = Vec::with_capacity(orders.len());
    for order in orders {
        let package = order.package;
        let mut snapshot = package.snapshot();
        snapshot["creditValidityDays"] = json!(order.credits_valid_days);
        snapshot["currency"] = json!(order.provider.currency());
        ids.push(Uuid::now_v7());
        order_ids.push(order.provider_order_id);
        users.push(order.user_id);
        packages.push(package.id);
        snapshots.push(snapshot);
        prices.push(package.price.to_string());
        base.push(package.credits);
        bonus.push(package.bonus_credits);
        valid_days.push(order.credits_valid_days);
        providers.push(order.provider.as_str());
        currencies.push(order.provider.currency());
        subscriptions.push(order.subscription_id);
    }
    sqlx::query_scalar(
        "insert into payment_orders
             (id, provider_order_id, user_id, package_id, package_snapshot, amount, currency,
              base_credits, bonus_credits, total_credits, status, status_history, created_from,
              credits_valid_days, provider, subscription_id)
         select id, order_id, user_id, package_id, snapshot, price::numeric, currency, base,
                bonus, base + bonus, 'pending',
                jsonb_build_array(jsonb_build_object(
                    'status', 'pending', 'at', now(), 'reason', $11::text)),
                $12, valid_days, provider, subscription
         from unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::text[],
                     $7::int8[], $8::int8[], $9::text[], $10::int4[], $13::text[], $14::text[])
              as n(id, order_id, user_id, package_id, snapshot, price, base, bonus, currency,
                   valid_days, provider, subscription)
         on conflict on constraint payment_orders_provider_order_id_key do nothing
         returning provider_order_id",
    )
    .bind(&ids)
    .bind(&order_ids)
    .bind(&users)
    .bind(&packages)
    .bind(&snapshots)
    .bind(&prices)
    .bind(&base)
    .bind(&bonus)
    .bind(&currencies)
    .bind(&valid_days)
    .bind(created_from.reason())
    .bind(created_from.as_str())
    .bind(&providers)
    .bind(&subscriptions)
    .fetch_all(executor)
    .await
}

/// A user's orders still open for payment: pending and younger than
/// `timeout` (the worker expires them then). Their count, and when the
/// oldest one was created.
pub async fn open_pending<'e>(
    executor: impl PgExecutor<'e>,
    user_id: &str,
    timeout: std::time::Duration,
) -> Result<(i64, Option<DateTime<Utc>>), sqlx::Error> {
    // payment_orders_user_created_idx: the user's newest orders only.
    sqlx::query_as(
        "select count(*), min(created_at) from payment_orders
         where user_id = $1 and status = 'pending' and created_at > now() - $2::interval",
    )
    .bind(user_id)
    .bind(timeout)
    .fetch_one(executor)
    .await
}

/// An order's hold for review, ended by a person.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HoldCleared<'a> {
    pub order_id: Uuid,
    /// The order's new status, if it changes.
    pub status: Option<&'a str>,
    pub history_reason: &'a str,
    pub event_type: &'a str,
    pub event: &'a serde_json::Value,
}

/// Clears an order's hold (`ledger::review`): the reason goes, the status
/// may change, a history entry and an event say who ended it and why.
pub(crate) async fn clear_hold(
    tx: &mut PgConnection,
    cleared: HoldCleared<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "with o as (
             update payment_orders
             set review_reason = null,
                 status = coalesce($2, status),
                 status_history = status_history || jsonb_build_array(jsonb_build_object(
                     'status', coalesce($2, status), 'at', now(), 'reason', $3::text)),
                 updated_at = now()
             where id = $1
         )
         insert into payment_order_events (order_id, event_type, event_data)
         values ($1, $4, $5)",
    )
    .bind(cleared.order_id)
    .bind(cleared.status)
    .bind(cleared.history_reason)
    .bind(cleared.event_type)
    .bind(cleared.event)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Records that `payment_intent` paid order `provider_order_id`, when the
/// order holds no payment yet (its event did not say, and the provider was
/// asked). Whether it now holds that payment.
pub async fn attach_payment<'e>(
    executor: impl PgExecutor<'e>,
    provider_order_id: &str,
    payment_intent: &str,
) -> Result<bool, sqlx::Error> {
    let attached: Option<bool> = sqlx::query_scalar(
        "update payment_orders set payment_intent = $2, updated_at = now()
         where provider_order_id = $1 and payment_intent is null
         returning true",
    )
    .bind(provider_order_id)
    .bind(payment_intent)
    .fetch_optional(executor)
    .await?;
    Ok(attached.is_some())
}

/// The user an order belongs to, if it is recorded.
pub async fn owner<'e>(
    executor: impl PgExecutor<'e>,
    provider_order_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("select user_id from payment_orders where provider_order_id = $1")
        .bind(provider_order_id)
        .fetch_optional(executor)
        .await
}

/// An order still waiting for its payment, as `reconcile` sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AwaitingPayment {
    pub id: Uuid,
    pub provider_order_id: String,
    pub user_id: String,
    pub package_id: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

/// `provider`'s orders created at least `older_than` and at most `within`
/// ago whose payment never arrived: still pending, or expired by the
/// payment timeout (a payment may have come without its webhook). Oldest
/// first, at most `limit`; only order `only` when given.
pub async fn awaiting_payment<'e>(
    executor: impl PgExecutor<'e>,
    provider: PaymentProvider,
    older_than: std::time::Duration,
    within: std::time::Duration,
    limit: i64,
    only: Option<&str>,
) -> Result<Vec<AwaitingPayment>, sqlx::Error> {
    sqlx::query_as(
        "select id, provider_order_id, user_id, package_id, status, created_at
         from payment_orders
         where status in ('pending', 'expired') and provider = $4
           and created_at < now() - $1::interval
           and created_at > now() - $2::interval
           and ($5::text is null or provider_order_id = $5)
         order by created_at
         limit $3",
    )
    .bind(older_than)
    .bind(within)
    .bind(limit)
    .bind(provider.as_str())
    .bind(only)
    .fetch_all(executor)
    .await
}

#[derive(Debug, Clone)]
pub struct StoredOrder {
    pub id: Uuid,
    pub provider: PaymentProvider,
    pub user_id: String,
    pub package_id: String,
    pub status: OrderStatus,
    pub review_reason: Option<String>,
    /// Days the credits of this order stay valid after the grant (none: forever).
    pub credits_valid_days: Option<i32>,
}

/// The orders a batch is about, locked, by provider order id; and which of
/// them already hold a payment reference (Stripe's PaymentIntent), so an
/// event announcing that payment under another object's id (an invoice
/// after its Checkout Session) finds the order that was paid.
#[derive(Debug, Default)]
pub(crate) struct LockedOrders {
    pub by_id: HashMap<String, StoredOrder>,
    by_payment_intent: HashMap<String, String>,
}

impl LockedOrders {
    /// The order `event` is about: the one holding its payment, else the
    /// one with its id.
    pub fn key_for<'e>(&'e self, event: &'e OrderEvent) -> &'e str {
        event
            .payment_intent
            .as_ref()
            .and_then(|intent| self.by_payment_intent.get(intent))
            .map_or(event.order_id.as_str(), String::as_str)
    }
}

/// Creates the orders that do not exist yet but whose events name a user and
/// a known package in their metadata (`created_from = 'webhook'`), then locks
/// every order the events refer to, in order-id order so that concurrent
/// batches take locks in the same order. An order missing from the result is
/// one we cannot know. An order created here takes its credit validity from
/// `terms`, as the API's would.
///
/// An event whose payment (`payment_intent`) an order already holds is
/// about that order: none is created for it.
pub(crate) async fn find_or_create_locked(
    tx: &mut PgConnection,
    events: &[&OrderEvent],
    terms: &CreditTerms,
) -> Result<LockedOrders, sqlx::Error> {
    let mut intents: Vec<&str> = events
        .iter()
        .filter_map(|e| e.payment_intent.as_deref())
        .collect();
    intents.sort_unstable();
    intents.dedup();
    // Only Stripe events carry one; Crossmint batches skip these statements.
    let paid: Vec<String> = if intents.is_empty() {
        Vec::new()
    } else {
        // Two batches announcing one payment under different objects (a
        // session in one, its invoice in the other) would each find no
        // order holding it and each create one from the metadata. A lock
        // per payment, held to commit and taken in sorted order, makes the
        // second wait and then find the first's order.
        sqlx::query(
            "select pg_advisory_xact_lock(k)
             from (select hashtextextended(i, 0) as k from unnest($1::text[]) as i order by 1) s",
        )
        .bind(&intents)
        .execute(&mut *tx)
        .await?;
        sqlx::query_scalar(
            "select payment_intent from payment_orders where payment_intent = any($1)",
        )
        .bind(&intents)
        .fetch_all(&mut *tx)
        .await?
    };
    // Of the events in this batch announcing one payment not yet held by
    // any order (a session and its invoice), only the first creates an
    // order from metadata; the rest find it through the payment below.
    let mut creating_for: HashMap<&str, &str> = HashMap::new();
    let creatable: Vec<PendingOrder<'_>> = events
        .iter()
        .filter(|e| match e.payment_intent.as_deref() {
            None => true,
            Some(intent) if paid.iter().any(|p| p == intent) => false,
            Some(intent) => *creating_for.entry(intent).or_insert(&e.order_id) == e.order_id,
        })
        .filter_map(|e| {
            let package = e.package_id.as_deref().and_then(find_bought)?;
            Some(PendingOrder {
                provider: e.provider,
                provider_order_id: &e.order_id,
                user_id: e.user_id.as_deref()?,
                package,
                // A subscription period's credits last for the period (and
                // the grace), set at the grant; a package's by the terms.
                credits_valid_days: match e.subscription {
                    Some(_) => None,
                    None => terms.valid_days(package.id),
                },
                subscription_id: e.subscription.as_ref().map(|s| s.subscription_id.as_str()),
            })
        })
        .collect();
    if !creatable.is_empty() {
        insert_pending(&mut *tx, CreatedFrom::Webhook, &creatable).await?;
    }

    let mut wanted: Vec<&str> = events.iter().map(|e| e.order_id.as_str()).collect();
    wanted.sort_unstable();
    wanted.dedup();
    type Row = (
        Uuid,
        String,
        String,
        String,
        String,
        String,
        Option<String>,
        Option<i32>,
        Option<String>,
    );
    // The `or` only when a payment is held already: Crossmint's batches
    // keep the plain index lookup on the provider's id.
    let by_payment = if paid.is_empty() {
        ""
    } else {
        "or payment_intent = any($2)"
    };
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "select id, provider_order_id, provider, user_id, package_id, status, review_reason,
                credits_valid_days, payment_intent
         from payment_orders
         where provider_order_id = any($1) {by_payment}
         order by provider_order_id
         for update"
    ))
    .bind(&wanted)
    .bind(&paid)
    .fetch_all(&mut *tx)
    .await?;
    let mut locked = LockedOrders::default();
    for (
        id,
        order_id,
        provider,
        user_id,
        package_id,
        status,
        review_reason,
        credits_valid_days,
        payment_intent,
    ) in rows
    {
        // The check constraints admit only known values; anything else is
        // refused rather than guessed, since a guess could grant.
        let status = OrderStatus::parse(&status).ok_or_else(|| {
            sqlx::Error::Decode(format!("unknown order status {status:?}").into())
        })?;
        let provider = PaymentProvider::parse(&provider).ok_or_else(|| {
            sqlx::Error::Decode(format!("unknown order provider {provider:?}").into())
        })?;
        if let Some(intent) = payment_intent {
            locked.by_payment_intent.insert(intent, order_id.clone());
        }
        locked.by_id.insert(
            order_id,
            StoredOrder {
                id,
                provider,
                user_id,
                package_id,
                status,
                review_reason,
                credits_valid_days,
            },
        );
    }
    // A payment no order holds yet is about the first order, in this
    // batch, that an event announcing it names.
    for event in events {
        if let Some(intent) = &event.payment_intent
            && !locked.by_payment_intent.contains_key(intent)
            && locked.by_id.contains_key(&event.order_id)
        {
            locked
                .by_payment_intent
                .insert(intent.clone(), event.order_id.clone());
        }
    }
    Ok(locked)
}

/// What one run of the payment timeout did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiryRun {
    /// Orders marked `expired` by this run.
    pub expired: u64,
    /// The same, by the provider that was to take the payment.
    pub by_provider: Vec<(PaymentProvider, u64)>,
    /// Orders created before this were due; the next run need not look
    /// further back than this (less a margin, see [`expire_stale`]).
    pub cutoff: DateTime<Utc>,
}

/// Marks `expired` every pending order created more than `timeout` ago (and
/// after `scan_from`, when given), with a status-history entry and an
/// `order.expired` event, in one statement.
///
/// Safe with any number of workers running it at once: rows are locked
/// `for update skip locked`, so each order is expired by one run, and one
/// that a grant holds is skipped (under read committed a row whose grant
/// committed meanwhile is re-checked and no longer pending). Orders held for
/// review are left alone: a person decides those, and their confirm answer
/// should keep saying "under review".
///
/// `scan_from` bounds the index scan from below: without it every run would
/// walk every order ever created. The caller passes the previous run's
/// cutoff less a margin that covers transactions that were still open (an
/// order's `created_at` is its transaction's start, which may commit later).
pub async fn expire_stale<'e>(
    executor: impl PgExecutor<'e>,
    timeout: std::time::Duration,
    scan_from: Option<DateTime<Utc>>,
) -> Result<ExpiryRun, sqlx::Error> {
    let timeout_secs = i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX);
    let reason = format!("no payment within {} minutes", timeout.as_secs() / 60);
    let (expired, cutoff, providers): (i64, DateTime<Utc>, Vec<String>) = sqlx::query_as(
        "with due as (
             select id from payment_orders
             where status = 'pending' and review_reason is null
               and created_at < now() - make_interval(secs => $1::int8)
               and ($2::timestamptz is null or created_at >= $2)
             order by created_at
             for update skip locked
         ), expired as (
             update payment_orders o
             set status = 'expired', expired_at = now(), updated_at = now(),
                 status_history = o.status_history || jsonb_build_array(jsonb_build_object(
                     'status', 'expired', 'at', now(), 'reason', $3::text))
             from due where o.id = due.id
             returning o.id, o.provider
         ), events as (
             insert into payment_order_events (order_id, event_type, event_data)
             select id, 'order.expired', jsonb_build_object('timeoutSeconds', $1::int8)
             from expired
         )
         select (select count(*) from expired), now() - make_interval(secs => $1::int8),
                (select coalesce(array_agg(provider), '{}') from expired)",
    )
    .bind(timeout_secs)
    .bind(scan_from)
    .bind(reason)
    .fetch_one(executor)
    .await?;
    let mut by_provider: Vec<(PaymentProvider, u64)> = Vec::new();
    for provider in providers.iter().filter_map(|p| PaymentProvider::parse(p)) {
        match by_provider.iter_mut().find(|(p, _)| *p == provider) {
            Some((_, count)) => *count += 1,
            None => by_provider.push((provider, 1)),
        }
    }
    Ok(ExpiryRun {
        expired: expired.unsigned_abs(),
        by_provider,
        cutoff,
    })
}

/// One order event a delivery caused, for the operator: `head` is its time
/// and type, `data` its payload (and `data_text` that payload as
/// PostgreSQL prints it).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventLine {
    pub head: String,
    pub data: serde_json::Value,
    pub data_text: String,
}

/// The order events delivery row `delivery_row` caused, oldest first.
pub async fn events_of_delivery(
    pool: &sqlx::PgPool,
    delivery_row: i64,
) -> Result<Vec<EventLine>, sqlx::Error> {
    sqlx::query_as(
        "select e.created_at::text || ' ' || e.event_type as head,
                e.event_data as data, e.event_data::text as data_text
         from payment_order_events e where e.delivery_id = $1 order by e.id",
    )
    .bind(delivery_row)
    .fetch_all(pool)
    .await
}

/// Orders held for review, and those whose revoke fell short with the
/// credits they still owe (`ledgerhook-admin status`).
pub async fn review_counts(pool: &sqlx::PgPool) -> Result<(i64, i64, i64), sqlx::Error> {
    sqlx::query_as(
        "select (select count(*) from payment_orders where review_reason is not null),
                (select count(*) from payment_orders where revoke_shortfall > 0),
                (select coalesce(sum(revoke_shortfall), 0)::int8 from payment_orders
                 where revoke_shortfall > 0)",
    )
    .fetch_one(pool)
    .await
}

/// Completes order `order_id` by hand (a manual grant stands in for its
/// purchase grant): its status, a history entry with `reason`, and the
/// `credits.granted_manually` event.
pub async fn complete_by_hand(
    tx: &mut PgConnection,
    order_id: Uuid,
    reason: &str,
    event: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "with o as (
             update payment_orders
             set status = 'completed', completed_at = coalesce(completed_at, now()),
                 status_history = status_history || jsonb_build_array(jsonb_build_object(
                     'status', 'completed', 'at', now(), 'reason', $2::text)),
                 updated_at = now()
             where id = $1
         )
         insert into payment_order_events (order_id, event_type, event_data)
         values ($1, 'credits.granted_manually', $3)",
    )
    .bind(order_id)
    .bind(reason)
    .bind(event)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A take-back, as the order records it.
#[derive(Debug, Clone, Copy)]
pub struct TakeBackOnOrder<'a> {
    pub order_id: Uuid,
    pub taken: i64,
    pub shortfall: i64,
    /// The order's status, kept in the history entry.
    pub status: &'a str,
    pub history_reason: &'a str,
    pub event_type: &'a str,
    pub event: &'a serde_json::Value,
}

/// Records a take-back on its order: the revoke columns (credits taken,
/// the shortfall already spent), a history entry and its event.
pub async fn record_take_back(
    tx: &mut PgConnection,
    take: TakeBackOnOrder<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "with o as (
             update payment_orders
             set revoked_at = now(),
                 revoked_credits = coalesce(revoked_credits, 0) + $2,
                 revoke_shortfall = coalesce(revoke_shortfall, 0) + $3,
                 status_history = status_history || jsonb_build_array(jsonb_build_object(
                     'status', $4::text, 'at', now(), 'reason', $5::text)),
                 updated_at = now()
             where id = $1
         )
         insert into payment_order_events (order_id, event_type, event_data)
         values ($1, $6, $7)",
    )
    .bind(take.order_id)
    .bind(take.taken)
    .bind(take.shortfall)
    .bind(take.status)
    .bind(take.history_reason)
    .bind(take.event_type)
    .bind(take.event)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
