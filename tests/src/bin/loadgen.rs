//! Load generator: sends N uniquely signed deliveries to an ingester at a
//! chosen concurrency (optionally paced to a rate), then reports accepted/s,
//! ack latency, delivery-to-credit latency, and checks the ledger invariant.
//!
//! ```text
//! ledgerhook-loadgen --url http://127.0.0.1:8080/webhooks/crossmint \
//!     --database-url postgres://postgres@127.0.0.1:5432/ledgerhook \
//!     --count 20000 --concurrency 64 [--rate 2500] [--no-wait] [--duplicates 0]
//!     [--retry-refused] [--wait-timeout-secs 300] [--provider stripe]
//! ```
//! The secret is the first of `CROSSMINT_WEBHOOK_SECRET` (the Svix test
//! secret if unset). With `--provider stripe` (and a `/webhooks/stripe`
//! URL) the deliveries are Stripe's paid `checkout.session.completed`,
//! signed with the first of `STRIPE_WEBHOOK_SECRET` (the tests' fake secret
//! if unset); duplicates are the same session under new event ids. Bounded
//! in count and time; only talks to the given URL.
// It measures from outside: the database is read as an observer would
// (see clippy.toml).
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use clap::Parser;
use ledgerhook_domain::PACKAGES;
use ledgerhook_providers::svix::SigningSecret;
use ledgerhook_tests::stripe_webhook::{STRIPE_TEST_SECRET, checkout_completed, sign_stripe};
use ledgerhook_tests::webhook::{
    TEST_SECRET, now_secs, order_paid, payment_succeeded, svix_headers,
};
use sqlx::PgPool;

/// How often the wait for processing looks (see [`wait_processed`]).
const POLL: Duration = Duration::from_millis(500);

struct Options {
    url: String,
    database_url: String,
    count: usize,
    concurrency: usize,
    rate: Option<f64>,
    wait: bool,
    wait_timeout: Duration,
    /// Extra copies of each delivery under new ids (duplicate orders).
    duplicates: usize,
    /// Send nothing: wait for everything in the database to be processed and
    /// check the invariant over all of it (after a run with --no-wait).
    check_only: bool,
    /// Send a refused delivery again (200 ms later) until accepted, as a
    /// webhook sender does, within the wait timeout.
    retry_refused: bool,
    /// Send Stripe events instead of Crossmint's.
    stripe: bool,
}

/// Sends N uniquely signed webhook deliveries to an ingester, then reports
/// accepted/s, ack latency and delivery-to-credit latency and checks the
/// ledger invariant in the database.
///
/// The secret is the first of CROSSMINT_WEBHOOK_SECRET (the Svix test secret
/// if unset); with --provider stripe, the first of STRIPE_WEBHOOK_SECRET
/// (the tests' fake secret if unset). Bounded in count and time; only talks
/// to the given URL and database.
#[derive(Parser)]
#[command(name = "ledgerhook-loadgen", version)]
struct Cli {
    /// The ingester's webhook route.
    #[arg(
        long,
        value_name = "URL",
        default_value = "http://127.0.0.1:8080/webhooks/crossmint"
    )]
    url: String,
    /// The database the worker writes to, for latencies and the invariant.
    #[arg(long, value_name = "URL", default_value = ledgerhook_runtime::config::DEFAULT_DATABASE_URL)]
    database_url: String,
    /// How many deliveries to send (1..=1000000).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    count: usize,
    /// How many requests in flight at once (1..=1024).
    #[arg(long, value_name = "N", default_value_t = 64)]
    concurrency: usize,
    /// Pace the sends to this many per second (default: as fast as possible).
    #[arg(long, value_name = "PER_SEC")]
    rate: Option<f64>,
    /// Do not wait for the worker to process the deliveries.
    #[arg(long)]
    no_wait: bool,
    /// How long to wait for processing.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    wait_timeout_secs: u64,
    /// Extra copies of each delivery under new ids (duplicate orders).
    #[arg(long, value_name = "N", default_value_t = 0)]
    duplicates: usize,
    /// Send nothing: wait for everything in the database to be processed and
    /// check the invariant over all of it (after a run with --no-wait).
    #[arg(long)]
    check_only: bool,
    /// Send a refused delivery again (200 ms later) until accepted, as a
    /// webhook sender does, within the wait timeout.
    #[arg(long)]
    retry_refused: bool,
    /// Send Crossmint's deliveries or Stripe's.
    #[arg(long, value_name = "PROVIDER", default_value = "crossmint",
          value_parser = ["crossmint", "stripe"])]
    provider: String,
}

fn options() -> anyhow::Result<Options> {
    let cli = Cli::parse();
    let o = Options {
        url: cli.url,
        database_url: cli.database_url,
        count: cli.count,
        concurrency: cli.concurrency,
        rate: cli.rate,
        wait: !cli.no_wait,
        wait_timeout: Duration::from_secs(cli.wait_timeout_secs),
        duplicates: cli.duplicates,
        check_only: cli.check_only,
        retry_refused: cli.retry_refused,
        stripe: cli.provider == "stripe",
    };
    if o.count == 0 || o.count > 1_000_000 || o.concurrency == 0 || o.concurrency > 1024 {
        bail!("--count must be 1..=1000000 and --concurrency 1..=1024");
    }
    Ok(o)
}

/// One prepared request: headers and body are signed before the clock starts.
struct Prepared {
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = options()?;
    if o.check_only {
        let pool = PgPool::connect(&o.database_url)
            .await
            .context("connecting to the database")?;
        let total: i64 = sqlx::query_scalar("select count(*) from webhook_deliveries")
            .fetch_one(&pool)
            .await?;
        let started = Instant::now();
        let last = wait_processed(&pool, 0, total, o.wait_timeout).await?;
        println!(
            "{total} processed {:.2}s after the check started; the last at {last:.3} (Unix time)",
            started.elapsed().as_secs_f64()
        );
        // The worker creates the orders, so they are counted once all is done.
        let expected: i64 =
            sqlx::query_scalar("select coalesce(sum(total_credits), 0)::int8 from payment_orders")
                .fetch_one(&pool)
                .await?;
        let orders: i64 = sqlx::query_scalar("select count(*) from payment_orders")
            .fetch_one(&pool)
            .await?;
        return check(&pool, 0, expected, orders).await;
    }
    let secret_text =
        std::env::var("CROSSMINT_WEBHOOK_SECRET").unwrap_or_else(|_| TEST_SECRET.into());
    let secret =
        SigningSecret::parse(secret_text.split_whitespace().next().unwrap_or(TEST_SECRET))?;
    let stripe_secret = std::env::var("STRIPE_WEBHOOK_SECRET")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| STRIPE_TEST_SECRET.to_owned());
    let run = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();

    let mut prepared = Vec::with_capacity(o.count * (1 + o.duplicates));
    let mut expected_credits: i64 = 0;
    for n in 0..o.count {
        let package = &PACKAGES[n % PACKAGES.len()];
        expected_credits += package.total_credits();
        let order = format!("load-{run}-{n}");
        let user = format!("load-{run}-user-{}", n % 1000);
        let price = package.price.to_string();
        if o.stripe {
            let (session, intent) = (format!("cs_load_{run}_{n}"), format!("pi_load_{run}_{n}"));
            for copy in 0..=o.duplicates {
                let event = checkout_completed(
                    &format!("evt_load_{run}_{n}_{copy}"),
                    &session,
                    &intent,
                    &user,
                    package.id,
                    package.price.cents(),
                );
                let body = serde_json::to_vec(&event)?;
                prepared.push(Prepared {
                    headers: vec![(
                        "stripe-signature",
                        sign_stripe(&stripe_secret, now_secs(), &body),
                    )],
                    body,
                });
            }
            continue;
        }
        // Duplicates alternate between Crossmint's event and the seed's, so a
        // storm mixes delivery ids and event names for one order.
        let crossmint = serde_json::to_vec(&payment_succeeded(&order, &user, package.id, &price))?;
        let seed = serde_json::to_vec(&order_paid(&order, &user, package.id, &price))?;
        for copy in 0..=o.duplicates {
            let id = format!("msg_load_{run}_{n}_{copy}");
            let body = if copy % 2 == 0 { &crossmint } else { &seed };
            prepared.push(Prepared {
                headers: svix_headers(&secret, &id, body).to_vec(),
                body: body.clone(),
            });
        }
    }
    let total = prepared.len();
    let prepared = Arc::new(prepared);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(o.concurrency)
        .build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let started_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_secs_f64();
    let mut tasks = Vec::new();
    for _ in 0..o.concurrency {
        let (client, prepared, next, url, rate, retry_refused, refused) = (
            client.clone(),
            prepared.clone(),
            next.clone(),
            o.url.clone(),
            o.rate,
            o.retry_refused.then_some(started + o.wait_timeout),
            refused.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = prepared.get(i) else { break };
                if let Some(rate) = rate {
                    // Open-loop pacing: request i is due at i / rate seconds.
                    tokio::time::sleep_until(
                        (started + Duration::from_secs_f64(i as f64 / rate)).into(),
                    )
                    .await;
                }
                loop {
                    let sent = Instant::now();
                    let mut request = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(item.body.clone());
                    for (name, value) in &item.headers {
                        request = request.header(*name, value);
                    }
                    match request.send().await {
                        Ok(response) if response.status().is_success() => {
                            let _ = response.bytes().await;
                            latencies.push(sent.elapsed());
                            break;
                        }
                        // Like a webhook sender: the same delivery again, later.
                        _ if retry_refused.is_some_and(|deadline| Instant::now() < deadline) => {
                            refused.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        _ => {
                            failures += 1;
                            break;
                        }
                    }
                }
            }
            (latencies, failures)
        }));
    }
    // While sending at a paced rate, sample the database's unprocessed count:
    // flat means the workers keep up, growing means they do not.
    let sampler = match (o.rate, o.wait) {
        (Some(_), true) => {
            let pool = PgPool::connect(&o.database_url)
                .await
                .context("connecting to the database")?;
            Some(tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(4));
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let unprocessed: Result<i64, _> = sqlx::query_scalar(
                        "select count(*) from webhook_deliveries where processed_at is null",
                    )
                    .fetch_one(&pool)
                    .await;
                    if let Ok(unprocessed) = unprocessed {
                        println!(
                            "  t={:>3}s unprocessed deliveries: {unprocessed}",
                            started.elapsed().as_secs()
                        );
                    }
                }
            }))
        }
        _ => None,
    };
    let mut latencies = Vec::with_capacity(total);
    let mut failures = 0;
    for task in tasks {
        let (l, f) = task.await?;
        latencies.extend(l);
        failures += f;
    }
    let elapsed = started.elapsed();
    if let Some(sampler) = sampler {
        sampler.abort();
    }
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "sent {total} deliveries ({} orders, {} duplicates each) at concurrency {}{}",
        o.count,
        o.duplicates,
        o.concurrency,
        o.rate
            .map(|r| format!(", paced to {r}/s"))
            .unwrap_or_default()
    );
    println!(
        "accepted {} ({failures} failed) in {:.2}s: {:.0} accepted/s",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64()
    );
    println!(
        "ack latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(pct(0.50)),
        ms(pct(0.99)),
        ms(latencies.last().copied().unwrap_or_default())
    );
    if o.retry_refused {
        println!(
            "refused and sent again: {} times",
            refused.load(Ordering::Relaxed)
        );
    }
    if failures > 0 {
        bail!("{failures} deliveries were not accepted");
    }

    let pool = PgPool::connect(&o.database_url)
        .await
        .context("connecting to the database")?;
    // Everything this run recorded has a row id at or above its lowest one.
    // Group commit may record a later request before the first, so look
    // among the first few thousand sent (far more than the concurrency).
    // Every copy counts: a duplicate of an early order may be recorded first.
    let (prefix, provider) = if o.stripe {
        ("evt", "stripe")
    } else {
        ("msg", "crossmint")
    };
    let early: Vec<String> = (0..o.count.min(5000))
        .flat_map(|n| (0..=o.duplicates).map(move |copy| (n, copy)))
        .map(|(n, copy)| format!("{prefix}_load_{run}_{n}_{copy}"))
        .collect();
    let first_row: i64 = sqlx::query_scalar(
        "select min(id) from webhook_deliveries where provider = $2 and delivery_id = any($1)",
    )
    .bind(&early)
    .bind(provider)
    .fetch_one(&pool)
    .await
    .context("finding this run's first delivery")?;
    let at_end = processed_since(&pool, first_row).await?;
    println!(
        "processed when sending ended: {at_end} of {total} (backlog {})",
        total as i64 - at_end
    );
    if !o.wait {
        return Ok(());
    }
    let last = wait_processed(&pool, first_row, total as i64, o.wait_timeout).await?;
    // Timed to the last delivery's processing, read from the database, not
    // to when the poll noticed it.
    let drained = last - started_unix;
    println!(
        "all processed {drained:.2}s after the first send ({:.0} processed/s overall)",
        total as f64 / drained
    );
    check(&pool, first_row, expected_credits, o.count as i64).await
}

async fn processed_since(pool: &PgPool, first_row: i64) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(
        "select count(*) from webhook_deliveries where id >= $1 and processed_at is not null",
    )
    .bind(first_row)
    .fetch_one(pool)
    .await?)
}

/// Waits until `total` deliveries from `first_row` on are processed, and
/// returns when the last of them was (Unix time, from `processed_at`: the
/// start of the transaction that processed it). The poll is slow on
/// purpose: each look counts every row, and a fast poll would take CPU
/// from the database it measures; the time comes from the rows, not the
/// poll.
async fn wait_processed(
    pool: &PgPool,
    first_row: i64,
    total: i64,
    timeout: Duration,
) -> anyhow::Result<f64> {
    let deadline = Instant::now() + timeout;
    loop {
        let done = processed_since(pool, first_row).await?;
        if done >= total {
            break;
        }
        if Instant::now() >= deadline {
            bail!("only {done} of {total} processed within {timeout:?}");
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(sqlx::query_scalar(
        "select extract(epoch from max(processed_at))::float8 from webhook_deliveries where id >= $1",
    )
    .bind(first_row)
    .fetch_one(pool)
    .await?)
}

/// Reports delivery-to-credit latency and checks that the credits granted
/// equal the sum over distinct paid orders, with no order granted twice.
async fn check(
    pool: &PgPool,
    first_row: i64,
    expected_credits: i64,
    expected_orders: i64,
) -> anyhow::Result<()> {
    let (p50, p99, max): (f64, f64, f64) = sqlx::query_as(
        "select percentile_cont(0.5) within group (order by s), percentile_cont(0.99) within group (order by s), max(s)
         from (select extract(epoch from l.created_at - d.received_at)::float8 as s
               from credit_ledger l join webhook_deliveries d on d.id = l.delivery_id
               where d.id >= $1) t",
    )
    .bind(first_row)
    .fetch_one(pool)
    .await?;
    println!(
        "delivery-to-credit p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        p50 * 1e3,
        p99 * 1e3,
        max * 1e3
    );

    let (granted, orders, max_grants): (i64, i64, i64) = sqlx::query_as(
        "select coalesce(sum(credits), 0)::int8, count(distinct order_id), coalesce(max(n), 0)::int8
         from (select order_id, sum(credits) credits, count(*) n from credit_ledger
               where delivery_id >= $1 group by order_id) g",
    )
    .bind(first_row)
    .fetch_one(pool)
    .await?;
    println!(
        "invariant: credits granted {granted}, expected {expected_credits} over {orders} distinct paid orders (expected {expected_orders}); max grants per order {max_grants}"
    );
    if granted != expected_credits || orders != expected_orders || max_grants != 1 {
        bail!("INVARIANT VIOLATED");
    }
    println!("invariant holds");
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
