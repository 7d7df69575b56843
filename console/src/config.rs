//! The console's configuration, from the environment, checked at start:
//! every missing or invalid variable is named at once (never a secret's
//! value).

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::HeaderName;
use ledgerhook_providers::crossmint::OrdersApi;
use ledgerhook_providers::stripe::reads::StripeReads;
use ledgerhook_runtime::amqp::Broker;
use ledgerhook_runtime::config::{
    ConfigError, DEFAULT_DATABASE_URL, DEFAULT_QUEUE_PREFIX, EnvReader,
};
use ledgerhook_runtime::http::ServerLimits;
use ledgerhook_runtime::secret_text::SecretText;
use ledgerhook_store::db::Migrations;
use ledgerhook_store::operators::SessionTimeouts;

/// The header an authenticating proxy sends its shared secret in.
pub const PROXY_SECRET_HEADER: &str = "x-console-proxy-secret";
/// The shortest proxy secret accepted.
pub const MIN_PROXY_SECRET_BYTES: usize = 32;

/// Not `Debug`: it holds the broker's URL, which may carry a password.
#[derive(Clone)]
pub struct Config {
    /// `DATABASE_URL`: the same database as the services.
    pub database_url: SecretText,
    /// `CONSOLE_LISTEN_ADDR` (default 127.0.0.1:8090: loopback, so the
    /// console is reached through a tunnel or a proxy unless said
    /// otherwise; port 0 picks a free port).
    pub listen_addr: SocketAddr,
    /// `METRICS_ADDR` (default 127.0.0.1:9196): Prometheus `/metrics`.
    pub metrics_addr: SocketAddr,
    /// `AMQP_URL`, `AMQP_CA_FILE`: the broker, for redriving parked
    /// deliveries and reading the work queue's depth.
    pub broker: Broker,
    /// `QUEUE_PREFIX`, as the services.
    pub queue_prefix: String,
    /// `CONSOLE_IDLE_TIMEOUT_MINUTES` (default 30) and
    /// `CONSOLE_SESSION_HOURS` (default 12): a session ends after this long
    /// without a request, or this long after signing in.
    pub sessions: SessionTimeouts,
    /// `CONSOLE_LOGIN_ATTEMPTS_PER_15_MINUTES` (default 10): sign-in
    /// attempts per operator name; and ten times that for all names
    /// together, so guessing across names is bounded too.
    pub login_attempts: u32,
    /// `CONSOLE_STATEMENT_TIMEOUT_MS` (default 5000): the longest any of
    /// the console's statements may run.
    pub statement_timeout: Duration,
    /// `CONSOLE_PROXY_SECRET` (at least 32 bytes) and
    /// `CONSOLE_PROXY_USER_HEADER` (default `x-forwarded-user`): trust an
    /// authenticating proxy (oauth2-proxy) that sends the secret in
    /// `x-console-proxy-secret` and the signed-in user in the header. The
    /// user must be an operator; unset, only passwords sign in.
    pub proxy: Option<ProxyAuth>,
    /// `CROSSMINT_SERVER_API_KEY` (with `CROSSMINT_API_URL`,
    /// `CROSSMINT_TIMEOUT_MS`) and `STRIPE_SECRET_KEY` (with
    /// `STRIPE_API_URL`, `STRIPE_TIMEOUT_MS`), as the API reads them: when
    /// set, a held order's page can ask its provider for the order as the
    /// provider sees it. Optional.
    pub crossmint: Option<OrdersApi>,
    pub stripe: Option<StripeReads>,
    /// `HTTP_*`: header, body and idle timeouts and the connection cap.
    pub http: ServerLimits,
    /// `DATABASE_POOL_SIZE` (default 4).
    pub pool_size: u32,
    /// `RUN_MIGRATIONS` (default true), as the services.
    pub migrations: Migrations,
}

/// An authenticating proxy in front of the console.
#[derive(Clone)]
pub struct ProxyAuth {
    pub secret: SecretText,
    pub user_header: HeaderName,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_reader(EnvReader::from_process())
    }

    pub fn from_reader<F: Fn(&str) -> Option<String>>(
        mut env: EnvReader<F>,
    ) -> Result<Self, ConfigError> {
        let idle_minutes: u64 = env.parsed_or("CONSOLE_IDLE_TIMEOUT_MINUTES", 30);
        let session_hours: u64 = env.parsed_or("CONSOLE_SESSION_HOURS", 12);
        if idle_minutes == 0 || session_hours == 0 {
            env.invalid(
                "CONSOLE_IDLE_TIMEOUT_MINUTES and CONSOLE_SESSION_HOURS must be at least 1".into(),
            );
        }
        let proxy = env.optional("CONSOLE_PROXY_SECRET").map(|secret| {
            if secret.len() < MIN_PROXY_SECRET_BYTES {
                env.invalid(format!(
                    "CONSOLE_PROXY_SECRET must be at least {MIN_PROXY_SECRET_BYTES} bytes"
                ));
            }
            let header = env.or_default("CONSOLE_PROXY_USER_HEADER", "x-forwarded-user");
            let user_header =
                HeaderName::try_from(header.to_ascii_lowercase()).unwrap_or_else(|_| {
                    env.invalid(format!(
                        "CONSOLE_PROXY_USER_HEADER {header:?} is not a header name"
                    ));
                    HeaderName::from_static("x-forwarded-user")
                });
            ProxyAuth {
                secret: secret.into(),
                user_header,
            }
        });
        let config = Self {
            database_url: env.or_default("DATABASE_URL", DEFAULT_DATABASE_URL).into(),
            listen_addr: env.parsed_or("CONSOLE_LISTEN_ADDR", ([127, 0, 0, 1], 8090).into()),
            metrics_addr: env.parsed_or("METRICS_ADDR", ([127, 0, 0, 1], 9196).into()),
            broker: Broker::from_env(&mut env),
            queue_prefix: env.or_default("QUEUE_PREFIX", DEFAULT_QUEUE_PREFIX),
            sessions: SessionTimeouts {
                idle: Duration::from_secs(idle_minutes.saturating_mul(60)),
                lifetime: Duration::from_secs(session_hours.saturating_mul(3600)),
            },
            login_attempts: env.parsed_or("CONSOLE_LOGIN_ATTEMPTS_PER_15_MINUTES", 10),
            statement_timeout: Duration::from_millis(
                env.parsed_or("CONSOLE_STATEMENT_TIMEOUT_MS", 5000),
            ),
            proxy,
            crossmint: env
                .optional("CROSSMINT_SERVER_API_KEY")
                .and_then(|_| OrdersApi::from_env(&mut env)),
            stripe: env
                .optional("STRIPE_SECRET_KEY")
                .and_then(|_| StripeReads::from_env(&mut env)),
            http: ServerLimits::from_env(&mut env),
            pool_size: env.parsed_or("DATABASE_POOL_SIZE", 4),
            migrations: env.parsed_or("RUN_MIGRATIONS", Migrations::Apply),
        };
        if config.login_attempts == 0 {
            env.invalid("CONSOLE_LOGIN_ATTEMPTS_PER_15_MINUTES must be at least 1".into());
        }
        if config.statement_timeout < Duration::from_millis(100) {
            env.invalid("CONSOLE_STATEMENT_TIMEOUT_MS must be at least 100".into());
        }
        env.finish()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(
        vars: &'static [(&'static str, &'static str)],
    ) -> EnvReader<impl Fn(&str) -> Option<String>> {
        EnvReader::new(move |name: &str| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn defaults_listen_on_loopback() {
        let config = Config::from_reader(reader(&[])).unwrap();
        assert!(config.listen_addr.ip().is_loopback());
        assert!(config.proxy.is_none());
        assert_eq!(config.sessions.idle, Duration::from_secs(1800));
    }

    #[test]
    fn a_short_proxy_secret_is_refused_without_showing_it() {
        let Err(error) =
            Config::from_reader(reader(&[("CONSOLE_PROXY_SECRET", "short-fake-secret")]))
        else {
            panic!("a short proxy secret was accepted");
        };
        let error = error.to_string();
        assert!(error.contains("CONSOLE_PROXY_SECRET"), "{error}");
        assert!(!error.contains("short-fake-secret"), "{error}");
    }
}
