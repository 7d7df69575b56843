//! The worker's configuration, from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use crate::reconcile;
use crate::settler::RetrySchedule;
use ledgerhook_domain::CreditTerms;
use ledgerhook_domain::NotifyChannels;
use ledgerhook_domain::notification_channels::CHANNELS_VAR;
use ledgerhook_runtime::amqp::Broker;
use ledgerhook_runtime::ca_file::CaFile;
use ledgerhook_runtime::config::{
    ConfigError, DEFAULT_DATABASE_URL, DEFAULT_QUEUE_PREFIX, EnvReader, process_env,
};
use ledgerhook_runtime::secret_text::SecretText;
use ledgerhook_store::db::Migrations;

#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL`: where orders, the ledger and balances live.
    pub database_url: SecretText,
    /// `AMQP_URL` and `AMQP_CA_FILE`: the broker to consume from, and a
    /// private CA trusted for `amqps://` besides the system's roots.
    pub broker: Broker,
    /// `METRICS_ADDR` (default 127.0.0.1:9181): Prometheus `/metrics`.
    pub metrics_addr: SocketAddr,
    /// `QUEUE_PREFIX` (default `ledgerhook`): must match the ingester's.
    pub queue_prefix: String,
    /// `WORKER_CONCURRENCY` (default 4): transactions in process at once.
    pub concurrency: usize,
    /// `WORKER_BATCH_SIZE` (default 64): most messages applied in one
    /// transaction. Batches form from what is already waiting, so under light
    /// load a batch is one message and adds no delay.
    pub batch_size: usize,
    /// `DATABASE_POOL_SIZE` (default: concurrency + 2).
    pub pool_size: u32,
    /// `RUN_MIGRATIONS` (default true): `false` or `0` leaves migrating to
    /// `ledgerhook-admin migrate` and refuses to start on a schema that is
    /// behind.
    pub migrations: Migrations,
    /// `WORKER_RETRY_ATTEMPTS` (default 6), `WORKER_RETRY_INITIAL_MS` (default
    /// 1000) and `WORKER_RETRY_MULTIPLIER` (default 4): for a payment whose
    /// order is not known yet, waits of 1 s, 4 s, 16 s, 64 s and 256 s in
    /// RabbitMQ wait queues, then the dead-letter queue. Database outages are
    /// retried in place without limit instead.
    pub retry: RetrySchedule,
    /// `WORKER_DEFER_MS` (default 30000): while a provider is paused on its
    /// own, how long each of its messages waits in a wait queue before it is
    /// looked at again (so, at most this long after it is resumed).
    pub defer: Duration,
    /// `WORKER_SHUTDOWN_GRACE_MS` (default 20000): how long a stopping worker
    /// waits for in-flight messages before closing its channel (which returns
    /// them to the queue).
    pub shutdown_grace: Duration,
    /// `CREDIT_VALIDITY_DAYS` (default: none, credits never expire), e.g.
    /// `pro=365,vip=365`: written on the orders the worker creates from
    /// webhook metadata; the API writes the same on the orders it creates.
    pub credit_terms: CreditTerms,
    /// `SUBSCRIPTION_GRACE_DAYS` (default 3): a subscription period's
    /// credits stay valid this long after the period ends (a renewal that
    /// is a day late does not leave the user without them).
    pub subscription_grace_days: u32,
    /// `STRIPE_SECRET_KEY` (optional; with `STRIPE_API_URL`): lets a refund
    /// or dispute whose PaymentIntent no order holds ask Stripe which
    /// invoice it paid, instead of waiting and parking.
    pub payment_lookup: Option<crate::payment_lookup::PaymentLookup>,
    /// `CREDIT_EXPIRY_INTERVAL_SECS` (default 3600; 0 turns the job off):
    /// how often the worker removes credits whose time has come.
    pub expiry_interval: Option<Duration>,
    /// `RECONCILE_INTERVAL_SECS` (default 0: off): how often the worker asks
    /// Crossmint about orders whose payment never arrived, created more than
    /// `RECONCILE_OLDER_THAN_SECS` (default 600) and less than 7 days ago.
    /// When on, the Crossmint variables of the API are needed too
    /// (`CROSSMINT_SERVER_API_KEY`, `CROSSMINT_API_URL`, `CROSSMINT_TIMEOUT_MS`).
    pub reconcile: Option<reconcile::job::Settings>,
    /// `PAYMENT_TIMEOUT_MINUTES` (default 30): an order still pending this
    /// long after it was created is marked expired.
    pub payment_timeout: Duration,
    /// `PAYMENT_TIMEOUT_INTERVAL_SECS` (default 60; 0 turns the job off):
    /// how often the worker looks for such orders.
    pub payment_timeout_interval: Option<Duration>,
    /// `NOTIFY_CHANNELS` (`email,discord,feishu`; blank or `none`: none):
    /// the channels each grant writes a notification row for. Unset: by the
    /// presence of `NOTIFY_SMTP_URL`, `NOTIFY_DISCORD_WEBHOOK_URL`,
    /// `NOTIFY_FEISHU_WEBHOOK_URL` (default: none). With the list set, the
    /// worker needs none of those secrets; it never sends
    /// (`ledgerhook-notifier` does) and never uses their values.
    pub notify: NotifyChannels,
    /// `RETENTION_DAYS` (default 90, from 7 to 3650) and
    /// `RETENTION_BATCH_ROWS` (default 500): what retention scrubs and how
    /// much per statement.
    pub retention: crate::retention::Settings,
    /// `RETENTION_INTERVAL_SECS` (default 3600; 0 turns the job off): how
    /// often the worker runs retention.
    pub retention_interval: Option<Duration>,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        // Blank counts as unset for every variable but `NOTIFY_CHANNELS`,
        // where blank is a choice: no channel.
        Self::from_reader(EnvReader::new(|name: &str| {
            if name == CHANNELS_VAR {
                std::env::var(name).ok()
            } else {
                process_env(name)
            }
        }))
    }

    pub fn from_reader<F: Fn(&str) -> Option<String>>(
        mut env: EnvReader<F>,
    ) -> Result<Self, ConfigError> {
        let concurrency: usize = env.parsed_or("WORKER_CONCURRENCY", 4);
        let batch_size: usize = env.parsed_or("WORKER_BATCH_SIZE", 64);
        if concurrency == 0 || batch_size == 0 {
            env.invalid("WORKER_CONCURRENCY and WORKER_BATCH_SIZE must be at least 1".into());
        }
        let reconcile = reconcile_settings(&mut env);
        let config = Self {
            database_url: env.or_default("DATABASE_URL", DEFAULT_DATABASE_URL).into(),
            broker: Broker::from_env(&mut env),
            metrics_addr: env.parsed_or("METRICS_ADDR", ([127, 0, 0, 1], 9181).into()),
            queue_prefix: env.or_default("QUEUE_PREFIX", DEFAULT_QUEUE_PREFIX),
            concurrency,
            batch_size,
            pool_size: env.parsed_or("DATABASE_POOL_SIZE", concurrency as u32 + 2),
            migrations: env.parsed_or("RUN_MIGRATIONS", Migrations::Apply),
            retry: RetrySchedule {
                attempts: env.parsed_or("WORKER_RETRY_ATTEMPTS", 6),
                initial: Duration::from_millis(env.parsed_or("WORKER_RETRY_INITIAL_MS", 1000)),
                multiplier: env.parsed_or("WORKER_RETRY_MULTIPLIER", 4),
            },
            defer: Duration::from_millis(env.parsed_or(
                "WORKER_DEFER_MS",
                u64::try_from(crate::settler::DEFER_DELAY.as_millis()).unwrap_or(30_000),
            )),
            shutdown_grace: Duration::from_millis(
                env.parsed_or("WORKER_SHUTDOWN_GRACE_MS", 20_000),
            ),
            credit_terms: env.parsed_or("CREDIT_VALIDITY_DAYS", CreditTerms::default()),
            subscription_grace_days: env.parsed_or("SUBSCRIPTION_GRACE_DAYS", 3),
            payment_lookup: crate::payment_lookup::PaymentLookup::from_env(&mut env),
            expiry_interval: Some(env.parsed_or("CREDIT_EXPIRY_INTERVAL_SECS", 3600u64))
                .filter(|secs| *secs > 0)
                .map(Duration::from_secs),
            reconcile,
            payment_timeout: Duration::from_secs(
                env.parsed_or("PAYMENT_TIMEOUT_MINUTES", 30u64)
                    .saturating_mul(60),
            ),
            payment_timeout_interval: Some(env.parsed_or("PAYMENT_TIMEOUT_INTERVAL_SECS", 60u64))
                .filter(|secs| *secs > 0)
                .map(Duration::from_secs),
            notify: crate::notify_channels::from_env(&mut env),
            retention: crate::retention::Settings::from_env(&mut env),
            retention_interval: Some(env.parsed_or("RETENTION_INTERVAL_SECS", 3600u64))
                .filter(|secs| *secs > 0)
                .map(Duration::from_secs),
        };
        if config.payment_timeout.is_zero() {
            env.invalid("PAYMENT_TIMEOUT_MINUTES must be at least 1".into());
        }
        if config.retry.attempts == 0 || config.retry.multiplier == 0 {
            env.invalid(
                "WORKER_RETRY_ATTEMPTS and WORKER_RETRY_MULTIPLIER must be at least 1".into(),
            );
        }
        if config.defer < Duration::from_millis(100) {
            env.invalid("WORKER_DEFER_MS must be at least 100".into());
        }
        CaFile::check_ssl_cert_file(&mut env);
        env.finish()?;
        Ok(config)
    }
}

/// The scheduled reconcile, when `RECONCILE_INTERVAL_SECS` turns it on.
fn reconcile_settings<F: Fn(&str) -> Option<String>>(
    env: &mut EnvReader<F>,
) -> Option<reconcile::job::Settings> {
    let every = Some(env.parsed_or("RECONCILE_INTERVAL_SECS", 0u64))
        .filter(|secs| *secs > 0)
        .map(Duration::from_secs)?;
    let older_than = Duration::from_secs(env.parsed_or("RECONCILE_OLDER_THAN_SECS", 600u64));
    Some(reconcile::job::Settings {
        every,
        scope: reconcile::Scope {
            older_than,
            within: reconcile::DEFAULT_WITHIN,
            limit: reconcile::DEFAULT_LIMIT,
        },
        crossmint: ledgerhook_providers::crossmint::OrdersApi::from_env(env)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_environment() {
        let config = Config::from_reader(EnvReader::new(|_: &str| None)).unwrap();
        assert_eq!(config.concurrency, 4);
        assert_eq!(config.batch_size, 64);
        assert_eq!(config.pool_size, 6);
        assert_eq!(config.metrics_addr.port(), 9181);
        assert!(config.reconcile.is_none(), "reconcile is off by default");
    }

    #[test]
    fn a_deferral_shorter_than_100_ms_is_refused() {
        let error = Config::from_reader(EnvReader::new(|name: &str| {
            (name == "WORKER_DEFER_MS").then(|| "0".to_owned())
        }))
        .unwrap_err();
        assert!(error.to_string().contains("WORKER_DEFER_MS"), "{error}");
    }

    #[test]
    fn scheduled_reconcile_needs_the_crossmint_key() {
        let error = Config::from_reader(EnvReader::new(|name: &str| {
            (name == "RECONCILE_INTERVAL_SECS").then(|| "60".to_owned())
        }))
        .unwrap_err();
        assert!(
            error.to_string().contains("CROSSMINT_SERVER_API_KEY"),
            "{error}"
        );
    }

    #[test]
    fn zero_concurrency_is_refused() {
        let error = Config::from_reader(EnvReader::new(|name: &str| {
            (name == "WORKER_CONCURRENCY").then(|| "0".to_owned())
        }))
        .unwrap_err();
        assert!(error.to_string().contains("WORKER_CONCURRENCY"));
    }

    #[test]
    fn the_payment_timeout_defaults_to_30_minutes_checked_every_minute_and_zero_is_refused() {
        let config = Config::from_reader(EnvReader::new(|_: &str| None)).unwrap();
        assert_eq!(config.payment_timeout, Duration::from_secs(30 * 60));
        assert_eq!(
            config.payment_timeout_interval,
            Some(Duration::from_secs(60))
        );
        let error = Config::from_reader(EnvReader::new(|name: &str| {
            (name == "PAYMENT_TIMEOUT_MINUTES").then(|| "0".to_owned())
        }))
        .unwrap_err();
        assert!(error.to_string().contains("PAYMENT_TIMEOUT_MINUTES"));
    }

    fn notify(pairs: &'static [(&'static str, &'static str)]) -> Result<NotifyChannels, String> {
        Config::from_reader(EnvReader::new(|name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }))
        .map(|c| c.notify)
        .map_err(|e| e.to_string())
    }

    #[test]
    fn notify_channels_come_from_the_list_when_set_and_from_the_secrets_otherwise() {
        let listed = notify(&[("NOTIFY_CHANNELS", "email,discord")]).unwrap();
        assert_eq!(
            listed,
            NotifyChannels {
                email: true,
                discord: true,
                feishu: false
            }
        );
        assert_eq!(
            notify(&[
                ("NOTIFY_CHANNELS", ""),
                ("NOTIFY_FEISHU_WEBHOOK_URL", "https://feishu.example/hook/t")
            ])
            .unwrap(),
            NotifyChannels::default()
        );
        assert_eq!(
            notify(&[("NOTIFY_FEISHU_WEBHOOK_URL", "https://feishu.example/hook/t")]).unwrap(),
            NotifyChannels {
                email: false,
                discord: false,
                feishu: true
            }
        );
        let error = notify(&[("NOTIFY_CHANNELS", "email,sms")]).unwrap_err();
        assert!(
            error.contains("NOTIFY_CHANNELS") && error.contains("sms"),
            "{error}"
        );
    }
}
