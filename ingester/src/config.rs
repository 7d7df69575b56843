//! The ingester's configuration, from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use ledgerhook_runtime::amqp::Broker;
use ledgerhook_runtime::amqp::carrier::MAX_CARRIED;
use ledgerhook_runtime::ca_file::CaFile;
use ledgerhook_runtime::config::{
    ConfigError, DEFAULT_DATABASE_URL, DEFAULT_QUEUE_PREFIX, EnvReader,
};
use ledgerhook_runtime::http::ServerLimits;
use ledgerhook_runtime::secret_text::SecretText;
use ledgerhook_store::db::Migrations;

use crate::webhook_keys::WebhookKeys;

#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL`: where deliveries are recorded.
    pub database_url: SecretText,
    /// `AMQP_URL` and `AMQP_CA_FILE`: the broker deliveries are published
    /// to, and a private CA trusted for `amqps://` besides the system's roots.
    pub broker: Broker,
    /// `CROSSMINT_WEBHOOK_SECRET` and `STRIPE_WEBHOOK_SECRET`: the keys of
    /// each provider served; at least one of the two is required (see
    /// [`WebhookKeys`]).
    pub keys: WebhookKeys,
    /// `LISTEN_ADDR` (default 127.0.0.1:8080; port 0 picks a free port).
    pub listen_addr: SocketAddr,
    /// `METRICS_ADDR` (default 127.0.0.1:9180): Prometheus `/metrics`.
    pub metrics_addr: SocketAddr,
    /// `QUEUE_PREFIX` (default `ledgerhook`): every exchange and queue name starts with it.
    pub queue_prefix: String,
    /// `WEBHOOK_MAX_BODY_BYTES` (default 262144): larger bodies get 413.
    pub max_body_bytes: usize,
    /// `RECORD_TIMEOUT_MS` (default 5000): the longest a delivery waits to be
    /// recorded before the sender gets `503 STORAGE_UNAVAILABLE` with
    /// `Retry-After`, well inside Svix's 15 s. A commit that lands later makes
    /// the sender's retry a `duplicate`.
    pub record_timeout: Duration,
    /// Header, body and idle timeouts and the connection cap (`HTTP_*`).
    pub http: ServerLimits,
    /// `DATABASE_POOL_SIZE` (default 16).
    pub pool_size: u32,
    /// `RUN_MIGRATIONS` (default true): `false` or `0` leaves migrating to
    /// `ledgerhook-admin migrate` and refuses to start on a schema that is
    /// behind.
    pub migrations: Migrations,
    /// `OUTBOX_RELAY_INTERVAL_MS` (default 2000): how often unpublished
    /// deliveries are looked for.
    pub relay_interval: Duration,
    /// `OUTBOX_RELAY_GRACE_MS` (default 5000): how old an unpublished delivery
    /// must be before the relay republishes it (the direct path usually
    /// publishes within milliseconds).
    pub relay_grace: Duration,
    /// `PUBLISH_CARRIER_MAX` (default and at most 32): the most deliveries
    /// one work-queue message carries. `1` publishes every delivery in the
    /// single-delivery form, which workers from before carriers can read:
    /// set it while such workers still run during an upgrade.
    pub carrier_max: usize,
    /// `REJECTED_REQUESTS_KEPT` (default 100; 0 keeps none): the refused
    /// requests kept per reason for the console (headers and size, never
    /// the body), and `REJECTED_REQUESTS_PER_SECOND` (default 10): the most
    /// this ingester notes a second; the rest are only counted.
    pub rejected_kept: u32,
    pub rejected_per_second: u32,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_reader(EnvReader::from_process())
    }

    pub fn from_reader<F: Fn(&str) -> Option<String>>(
        mut env: EnvReader<F>,
    ) -> Result<Self, ConfigError> {
        let keys = WebhookKeys::from_env(&mut env);
        let config = Self {
            database_url: env.or_default("DATABASE_URL", DEFAULT_DATABASE_URL).into(),
            broker: Broker::from_env(&mut env),
            keys,
            listen_addr: env.parsed_or("LISTEN_ADDR", ([127, 0, 0, 1], 8080).into()),
            metrics_addr: env.parsed_or("METRICS_ADDR", ([127, 0, 0, 1], 9180).into()),
            queue_prefix: env.or_default("QUEUE_PREFIX", DEFAULT_QUEUE_PREFIX),
            max_body_bytes: env.parsed_or("WEBHOOK_MAX_BODY_BYTES", 256 * 1024),
            record_timeout: Duration::from_millis(env.parsed_or("RECORD_TIMEOUT_MS", 5000)),
            http: ServerLimits::from_env(&mut env),
            pool_size: env.parsed_or("DATABASE_POOL_SIZE", 16),
            migrations: env.parsed_or("RUN_MIGRATIONS", Migrations::Apply),
            relay_interval: Duration::from_millis(env.parsed_or("OUTBOX_RELAY_INTERVAL_MS", 2000)),
            relay_grace: Duration::from_millis(env.parsed_or("OUTBOX_RELAY_GRACE_MS", 5000)),
            carrier_max: env.parsed_or("PUBLISH_CARRIER_MAX", MAX_CARRIED),
            rejected_kept: env.parsed_or("REJECTED_REQUESTS_KEPT", 100),
            rejected_per_second: env.parsed_or("REJECTED_REQUESTS_PER_SECOND", 10),
        };
        if !(1..=MAX_CARRIED).contains(&config.carrier_max) {
            env.invalid(format!(
                "PUBLISH_CARRIER_MAX must be from 1 to {MAX_CARRIED}"
            ));
        }
        if config.record_timeout.is_zero() {
            // Every delivery would be refused with 503.
            env.invalid("RECORD_TIMEOUT_MS must be at least 1".into());
        }
        CaFile::check_ssl_cert_file(&mut env);
        env.finish()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &'static [(&'static str, &'static str)]) -> Result<Config, ConfigError> {
        Config::from_reader(EnvReader::new(move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }))
    }

    const STRIPE: &str = "whsec_test_ledgerhook_fake_stripe_secret";

    #[test]
    fn with_neither_secret_both_are_named() {
        let error = from(&[]).unwrap_err();
        assert_eq!(
            error.missing,
            ["CROSSMINT_WEBHOOK_SECRET", "STRIPE_WEBHOOK_SECRET"]
        );
        assert!(error.to_string().contains("at least one of"), "{error}");
    }

    #[test]
    fn either_provider_alone_is_enough() {
        let config = from(&[("STRIPE_WEBHOOK_SECRET", STRIPE)]).unwrap();
        assert!(config.keys.crossmint.is_none());
        assert_eq!(config.keys.stripe.unwrap().len(), 1);
        let config = from(&[(
            "CROSSMINT_WEBHOOK_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        )])
        .unwrap();
        assert!(config.keys.stripe.is_none());
    }

    #[test]
    fn a_bad_stripe_secret_is_reported_by_position_without_its_value() {
        let error = from(&[(
            "STRIPE_WEBHOOK_SECRET",
            "whsec_test_ledgerhook_fake_stripe_secret sk_live_NOT_A_WEBHOOK_SECRET whsec_",
        )])
        .unwrap_err()
        .to_string();
        assert!(error.contains("STRIPE_WEBHOOK_SECRET entry 2"), "{error}");
        assert!(error.contains("STRIPE_WEBHOOK_SECRET entry 3"), "{error}");
        assert!(!error.contains("sk_live"), "{error}");
        assert!(!error.contains("ledgerhook_fake"), "{error}");
    }

    #[test]
    fn several_stripe_secrets_are_all_live() {
        let both = format!("{STRIPE} whsec_another_fake_secret_for_rotation");
        let config = Config::from_reader(EnvReader::new(move |name: &str| {
            (name == "STRIPE_WEBHOOK_SECRET").then(|| both.clone())
        }))
        .unwrap();
        assert_eq!(config.keys.stripe.unwrap().len(), 2);
    }

    #[test]
    fn several_secrets_are_all_live() {
        let config = from(&[(
            "CROSSMINT_WEBHOOK_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw whsec_b2xkLXNlY3JldC1mb3ItdGVzdHM=",
        )])
        .unwrap();
        assert_eq!(config.keys.crossmint.unwrap().secrets.len(), 2);
        assert_eq!(config.max_body_bytes, 262_144);
        assert_eq!(config.listen_addr.port(), 8080);
    }

    #[test]
    fn a_bad_secret_is_reported_by_position_without_its_value() {
        let error = from(&[(
            "CROSSMINT_WEBHOOK_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw sk_live_NOT_A_WEBHOOK_SECRET",
        )])
        .unwrap_err()
        .to_string();
        assert!(error.contains("entry 2"), "{error}");
        assert!(!error.contains("sk_live"), "{error}");
    }

    #[test]
    fn a_zero_record_timeout_is_refused_by_name() {
        let error = from(&[
            (
                "CROSSMINT_WEBHOOK_SECRET",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            ),
            ("RECORD_TIMEOUT_MS", "0"),
        ])
        .unwrap_err()
        .to_string();
        assert!(error.contains("RECORD_TIMEOUT_MS"), "{error}");
    }

    #[test]
    fn carriers_are_sized_from_one_to_their_most() {
        const KEY: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        assert_eq!(
            from(&[("CROSSMINT_WEBHOOK_SECRET", KEY)])
                .unwrap()
                .carrier_max,
            MAX_CARRIED
        );
        let single = from(&[
            ("CROSSMINT_WEBHOOK_SECRET", KEY),
            ("PUBLISH_CARRIER_MAX", "1"),
        ]);
        assert_eq!(single.unwrap().carrier_max, 1);
        for bad in ["0", "33"] {
            let error = Config::from_reader(EnvReader::new(move |name: &str| match name {
                "CROSSMINT_WEBHOOK_SECRET" => Some(KEY.to_string()),
                "PUBLISH_CARRIER_MAX" => Some(bad.to_string()),
                _ => None,
            }))
            .unwrap_err()
            .to_string();
            assert!(error.contains("PUBLISH_CARRIER_MAX"), "{bad}: {error}");
        }
    }
}
