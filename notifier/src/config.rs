//! The notifier's configuration, from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use ledgerhook_shared::ca_file::CaFile;
use ledgerhook_shared::config::{ConfigError, DEFAULT_DATABASE_URL, EnvReader};
use ledgerhook_shared::notifications::channels::{DISCORD_URL_VAR, FEISHU_URL_VAR, SMTP_URL_VAR};
use ledgerhook_shared::secret_text::SecretText;

#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL`: where the `notifications` outbox lives.
    pub database_url: SecretText,
    /// `DATABASE_POOL_SIZE` (default 4).
    pub pool_size: u32,
    /// `METRICS_ADDR` (default 127.0.0.1:9195): `/metrics` and `/healthz`.
    pub metrics_addr: SocketAddr,
    /// `NOTIFY_SMTP_URL` and `NOTIFY_EMAIL_FROM` (required with the URL):
    /// the buyer's email; none when the URL is unset.
    pub email: Option<EmailSettings>,
    /// `NOTIFY_DISCORD_WEBHOOK_URL`: a secret (it carries the token).
    pub discord_url: Option<SecretText>,
    /// `NOTIFY_FEISHU_WEBHOOK_URL`: a secret (it carries the token).
    pub feishu_url: Option<SecretText>,
    /// `NOTIFY_MAX_ATTEMPTS` (default 12): attempts before a row is parked.
    pub max_attempts: u32,
    /// `NOTIFY_RETRY_INITIAL_MS` (default 1000) and `NOTIFY_RETRY_MAX_MS`
    /// (default 1800000): the wait after a failed attempt doubles from the
    /// first to the longest (jittered by 10%). With the defaults, twelve
    /// attempts span about an hour and a half.
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// `NOTIFY_POLL_MS` (default 1000): how often an idle notifier looks
    /// for due rows (a busy one claims again at once).
    pub poll_interval: Duration,
    /// `NOTIFY_BATCH_SIZE` (default 32): rows claimed at once.
    pub batch_size: u32,
    /// `NOTIFY_CONCURRENCY` (default 8): sends in flight at once.
    pub concurrency: usize,
    /// `NOTIFY_SEND_TIMEOUT_MS` (default 15000): the most one send may take.
    /// A claim's lease is four times this, so a live notifier's rows are
    /// never claimed by another.
    pub send_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct EmailSettings {
    /// The SMTP URL, with its password if any: never logged.
    pub smtp_url: SecretText,
    pub from: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_reader(EnvReader::from_process())
    }

    pub fn from_reader<F: Fn(&str) -> Option<String>>(
        mut env: EnvReader<F>,
    ) -> Result<Self, ConfigError> {
        let email = env.optional(SMTP_URL_VAR).map(|url| EmailSettings {
            smtp_url: url.into(),
            from: env.required("NOTIFY_EMAIL_FROM").unwrap_or_default(),
        });
        let discord_url = webhook_url(&mut env, DISCORD_URL_VAR);
        let feishu_url = webhook_url(&mut env, FEISHU_URL_VAR);
        let config = Self {
            database_url: env.or_default("DATABASE_URL", DEFAULT_DATABASE_URL).into(),
            pool_size: env.parsed_or("DATABASE_POOL_SIZE", 4),
            metrics_addr: env.parsed_or("METRICS_ADDR", ([127, 0, 0, 1], 9195).into()),
            email,
            discord_url,
            feishu_url,
            max_attempts: env.parsed_or("NOTIFY_MAX_ATTEMPTS", 12),
            retry_initial: Duration::from_millis(env.parsed_or("NOTIFY_RETRY_INITIAL_MS", 1000)),
            retry_max: Duration::from_millis(env.parsed_or("NOTIFY_RETRY_MAX_MS", 1_800_000)),
            poll_interval: Duration::from_millis(env.parsed_or("NOTIFY_POLL_MS", 1000)),
            batch_size: env.parsed_or("NOTIFY_BATCH_SIZE", 32),
            concurrency: env.parsed_or("NOTIFY_CONCURRENCY", 8),
            send_timeout: Duration::from_millis(env.parsed_or("NOTIFY_SEND_TIMEOUT_MS", 15_000)),
        };
        if config.max_attempts == 0 || config.batch_size == 0 || config.concurrency == 0 {
            env.invalid(
                "NOTIFY_MAX_ATTEMPTS, NOTIFY_BATCH_SIZE and NOTIFY_CONCURRENCY must be at least 1"
                    .into(),
            );
        }
        if config.retry_initial.is_zero() || config.retry_max < config.retry_initial {
            env.invalid(
                "NOTIFY_RETRY_INITIAL_MS must be at least 1 and at most NOTIFY_RETRY_MAX_MS".into(),
            );
        }
        if config.send_timeout.is_zero() || config.poll_interval.is_zero() {
            env.invalid("NOTIFY_SEND_TIMEOUT_MS and NOTIFY_POLL_MS must be at least 1".into());
        }
        CaFile::check_ssl_cert_file(&mut env);
        env.finish()?;
        Ok(config)
    }

    /// How long a claim keeps other notifiers off a row.
    pub fn lease(&self) -> Duration {
        self.send_timeout * 4
    }
}

/// A webhook URL: http(s), checked without ever quoting it.
fn webhook_url<F: Fn(&str) -> Option<String>>(
    env: &mut EnvReader<F>,
    name: &'static str,
) -> Option<SecretText> {
    let url = env.optional(name)?;
    let usable = reqwest::Url::parse(url.trim())
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
    if !usable {
        env.invalid(format!("{name} is not an http(s) URL (value not shown)"));
    }
    Some(url.trim().to_owned().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_reader(EnvReader::new(move |name: &str| map.get(name).cloned()))
    }

    #[test]
    fn nothing_configured_is_a_valid_notifier_that_sends_nothing() {
        let config = config(&[]).unwrap();
        assert!(config.email.is_none() && config.discord_url.is_none());
        assert_eq!(config.metrics_addr.port(), 9195);
        assert_eq!(config.max_attempts, 12);
    }

    #[test]
    fn an_smtp_url_needs_a_sender_and_bad_urls_are_named_without_their_value() {
        let error = config(&[
            (SMTP_URL_VAR, "smtp://user:hunter2@mail.example"),
            (DISCORD_URL_VAR, "not a url with token sk_secret"),
        ])
        .unwrap_err();
        let message = error.to_string();
        assert!(message.contains("NOTIFY_EMAIL_FROM"), "{message}");
        assert!(message.contains(DISCORD_URL_VAR), "{message}");
        assert!(
            !message.contains("hunter2") && !message.contains("sk_secret"),
            "{message}"
        );
        let debug = format!(
            "{:?}",
            config(&[
                (SMTP_URL_VAR, "smtp://u:hunter2@m.example"),
                ("NOTIFY_EMAIL_FROM", "a@b.example")
            ])
            .unwrap()
        );
        assert!(!debug.contains("hunter2"), "{debug}");
    }
}
