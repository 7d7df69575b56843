//! The notifier's configuration, from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use ledgerhook_domain::notification_channels::{DISCORD_URL_VAR, FEISHU_URL_VAR, SMTP_URL_VAR};
use ledgerhook_runtime::ca_file::CaFile;
use ledgerhook_runtime::config::{ConfigError, DEFAULT_DATABASE_URL, EnvReader};
use ledgerhook_runtime::secret_text::SecretText;
use ledgerhook_store::db::Migrations;

#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL`: where the `notifications` outbox lives.
    pub database_url: SecretText,
    /// `DATABASE_POOL_SIZE` (default 4).
    pub pool_size: u32,
    /// `RUN_MIGRATIONS` (default true): `false` or `0` leaves migrating to
    /// `ledgerhook-admin migrate` and refuses to start on a schema that is
    /// behind.
    pub migrations: Migrations,
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
    /// A claim's lease covers the longest round it can start (see
    /// [`lease_for`]), so a live notifier's rows are never claimed by another.
    pub send_timeout: Duration,
}

/// The most one outcome's record may take (a pooled connection, waited for
/// at most 5 s, and one update); a record that takes longer is abandoned
/// and the row is sent again once its lease runs out.
pub const RECORD_TIMEOUT: Duration = Duration::from_secs(5);

/// What a lease keeps over the sends it covers: the last row's record
/// ([`RECORD_TIMEOUT`]) and as much again for scheduling and the claim's
/// own round trip.
pub const LEASE_MARGIN: Duration = Duration::from_secs(10);

/// The longest lease accepted: a notifier that dies leaves its claimed rows
/// waiting this long at most.
pub const MAX_LEASE: Duration = Duration::from_secs(60 * 60);

/// The lease for a claim of `batch_size` rows sent `concurrency` at a time,
/// each send bounded by `send_timeout`: `send_timeout x ceil(batch_size /
/// concurrency) + LEASE_MARGIN`.
///
/// Why that covers the last record: sends run in `concurrency` slots, a
/// slot taking the next row as soon as its send ends (records do not hold
/// slots), so by `k x send_timeout` at least `(k + 1) x concurrency` rows
/// have started, and every row's send has ended by `ceil(batch_size /
/// concurrency) x send_timeout`; its record follows within the margin.
/// `None` when that overflows.
pub fn lease_for(send_timeout: Duration, batch_size: u32, concurrency: usize) -> Option<Duration> {
    let rounds = u32::try_from((batch_size as usize).div_ceil(concurrency.max(1))).ok()?;
    send_timeout.checked_mul(rounds)?.checked_add(LEASE_MARGIN)
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
            migrations: env.parsed_or("RUN_MIGRATIONS", Migrations::Apply),
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
        if config.concurrency > 0 {
            let lease = lease_for(config.send_timeout, config.batch_size, config.concurrency);
            if lease.is_none_or(|lease| lease > MAX_LEASE) {
                env.invalid(format!(
                    "NOTIFY_SEND_TIMEOUT_MS x ceil(NOTIFY_BATCH_SIZE / NOTIFY_CONCURRENCY) \
                     must be at most {} s: a claim is leased for that plus {} s, and a \
                     stopped notifier's rows wait out the lease",
                    (MAX_LEASE - LEASE_MARGIN).as_secs(),
                    LEASE_MARGIN.as_secs()
                ));
            }
        }
        CaFile::check_ssl_cert_file(&mut env);
        env.finish()?;
        Ok(config)
    }

    /// How long a claim keeps other notifiers off its rows: longer than the
    /// longest round (checked at start, so this never fails).
    pub fn lease(&self) -> Duration {
        lease_for(self.send_timeout, self.batch_size, self.concurrency).unwrap_or(MAX_LEASE)
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
    fn the_lease_outlasts_the_longest_round() {
        let defaults = config(&[]).unwrap();
        // 32 rows, 8 at a time, 15 s each: four rounds of sends, 60 s, then
        // the margin for the last record.
        assert_eq!(defaults.lease(), Duration::from_secs(4 * 15 + 10));
        let timeout = Duration::from_millis(1500);
        for (batch, concurrency, rounds) in [
            (1, 1, 1),
            (8, 8, 1),
            (9, 8, 2),
            (33, 8, 5),
            (5, 100, 1),
            (7, 2, 4),
        ] {
            let lease = lease_for(timeout, batch, concurrency).unwrap();
            assert_eq!(
                lease,
                timeout * rounds + LEASE_MARGIN,
                "{batch}/{concurrency}"
            );
            assert!(
                lease > timeout * rounds + RECORD_TIMEOUT,
                "{batch}/{concurrency}"
            );
        }
        let custom = config(&[
            ("NOTIFY_BATCH_SIZE", "10"),
            ("NOTIFY_CONCURRENCY", "3"),
            ("NOTIFY_SEND_TIMEOUT_MS", "2000"),
        ])
        .unwrap();
        assert_eq!(custom.lease(), Duration::from_secs(4 * 2 + 10));
    }

    #[test]
    fn a_lease_longer_than_an_hour_is_refused() {
        let error = config(&[
            ("NOTIFY_BATCH_SIZE", "1000"),
            ("NOTIFY_CONCURRENCY", "1"),
            ("NOTIFY_SEND_TIMEOUT_MS", "15000"),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("NOTIFY_BATCH_SIZE / NOTIFY_CONCURRENCY"),
            "{error}"
        );
        assert!(
            config(&[("NOTIFY_SEND_TIMEOUT_MS", &u64::MAX.to_string())])
                .unwrap_err()
                .to_string()
                .contains("NOTIFY_SEND_TIMEOUT_MS"),
        );
        // Exactly at the bound is accepted.
        let at_bound = config(&[
            ("NOTIFY_BATCH_SIZE", "1"),
            (
                "NOTIFY_SEND_TIMEOUT_MS",
                &(MAX_LEASE - LEASE_MARGIN).as_millis().to_string(),
            ),
        ])
        .unwrap();
        assert_eq!(at_bound.lease(), MAX_LEASE);
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
