//! The ingester's configuration, from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use ledgerhook_shared::config::{
    ConfigError, DEFAULT_AMQP_URL, DEFAULT_DATABASE_URL, DEFAULT_QUEUE_PREFIX, EnvReader,
};
use ledgerhook_shared::svix::SigningSecret;

#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL`: where deliveries are recorded.
    pub database_url: String,
    /// `AMQP_URL`: the broker deliveries are published to.
    pub amqp_url: String,
    /// `CROSSMINT_WEBHOOK_SECRET`: one or more `whsec_` secrets separated by
    /// spaces; several are live at once while a secret is rotated. Required.
    pub secrets: Vec<SigningSecret>,
    /// `LISTEN_ADDR` (default 127.0.0.1:8080; port 0 picks a free port).
    pub listen_addr: SocketAddr,
    /// `METRICS_ADDR` (default 127.0.0.1:9180): Prometheus `/metrics`.
    pub metrics_addr: SocketAddr,
    /// `QUEUE_PREFIX` (default `ledgerhook`): every exchange and queue name starts with it.
    pub queue_prefix: String,
    /// `WEBHOOK_MAX_BODY_BYTES` (default 262144): larger bodies get 413.
    pub max_body_bytes: usize,
    /// `DATABASE_POOL_SIZE` (default 16).
    pub pool_size: u32,
    /// `OUTBOX_RELAY_INTERVAL_MS` (default 2000): how often unpublished
    /// deliveries are looked for.
    pub relay_interval: Duration,
    /// `OUTBOX_RELAY_GRACE_MS` (default 5000): how old an unpublished delivery
    /// must be before the relay republishes it (the direct path usually
    /// publishes within milliseconds).
    pub relay_grace: Duration,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_reader(EnvReader::from_process())
    }

    pub fn from_reader<F: Fn(&str) -> Option<String>>(
        mut env: EnvReader<F>,
    ) -> Result<Self, ConfigError> {
        let secrets = env
            .required("CROSSMINT_WEBHOOK_SECRET")
            .map(|text| parse_secrets(&text, &mut env))
            .unwrap_or_default();
        let config = Self {
            database_url: env.or_default("DATABASE_URL", DEFAULT_DATABASE_URL),
            amqp_url: env.or_default("AMQP_URL", DEFAULT_AMQP_URL),
            secrets,
            listen_addr: env.parsed_or("LISTEN_ADDR", ([127, 0, 0, 1], 8080).into()),
            metrics_addr: env.parsed_or("METRICS_ADDR", ([127, 0, 0, 1], 9180).into()),
            queue_prefix: env.or_default("QUEUE_PREFIX", DEFAULT_QUEUE_PREFIX),
            max_body_bytes: env.parsed_or("WEBHOOK_MAX_BODY_BYTES", 256 * 1024),
            pool_size: env.parsed_or("DATABASE_POOL_SIZE", 16),
            relay_interval: Duration::from_millis(env.parsed_or("OUTBOX_RELAY_INTERVAL_MS", 2000)),
            relay_grace: Duration::from_millis(env.parsed_or("OUTBOX_RELAY_GRACE_MS", 5000)),
        };
        env.finish()?;
        Ok(config)
    }
}

/// Parses each space-separated secret; a bad one is reported by position,
/// never by value.
fn parse_secrets<F: Fn(&str) -> Option<String>>(
    text: &str,
    env: &mut EnvReader<F>,
) -> Vec<SigningSecret> {
    let mut secrets = Vec::new();
    for (index, part) in text.split_whitespace().enumerate() {
        match SigningSecret::parse(part) {
            Ok(secret) => secrets.push(secret),
            Err(e) => env.invalid(format!("CROSSMINT_WEBHOOK_SECRET entry {}: {e}", index + 1)),
        }
    }
    secrets
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

    #[test]
    fn missing_secret_is_named() {
        let error = from(&[]).unwrap_err();
        assert_eq!(error.missing, ["CROSSMINT_WEBHOOK_SECRET"]);
    }

    #[test]
    fn several_secrets_are_all_live() {
        let config = from(&[(
            "CROSSMINT_WEBHOOK_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw whsec_b2xkLXNlY3JldC1mb3ItdGVzdHM=",
        )])
        .unwrap();
        assert_eq!(config.secrets.len(), 2);
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
}
