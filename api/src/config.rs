//! The API's configuration, from the environment, checked at start: every
//! missing or invalid variable is named at once (never a secret's value).

use std::net::SocketAddr;
use std::time::Duration;

use ledgerhook_domain::CreditTerms;
pub use ledgerhook_providers::stripe::checkout::DEFAULT_STRIPE_API_URL;
use ledgerhook_providers::stripe::checkout::ReturnUrls;
use ledgerhook_runtime::ca_file::CaFile;
use ledgerhook_runtime::config::{ConfigError, DEFAULT_DATABASE_URL, EnvReader};
use ledgerhook_runtime::http::ServerLimits;
use ledgerhook_runtime::secret_text::SecretText;
use ledgerhook_store::db::Migrations;

use crate::auth::{DEFAULT_MAX_LIFETIME_SECS, JwksSettings, JwtSecret, MIN_SECRET_BYTES, Policy};

/// Crossmint's staging API; production is `https://www.crossmint.com/api`.
pub use ledgerhook_runtime::config::DEFAULT_CROSSMINT_API_URL;

#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL`: the same database as the ingester and worker.
    pub database_url: SecretText,
    /// `LISTEN_ADDR` (default 127.0.0.1:8081; port 0 picks a free port).
    pub listen_addr: SocketAddr,
    /// `METRICS_ADDR` (default 127.0.0.1:9190): Prometheus `/metrics`.
    pub metrics_addr: SocketAddr,
    /// How users' tokens are checked (`AUTH_*`): see [`AuthConfig`].
    pub auth: AuthConfig,
    /// Header, body and idle timeouts and the connection cap (`HTTP_*`).
    pub http: ServerLimits,
    /// Crossmint's orders API, when `CROSSMINT_SERVER_API_KEY` is set;
    /// without it an order with `provider: "crossmint"` is `422
    /// PROVIDER_UNAVAILABLE`. At least one provider is required.
    pub crossmint: Option<CrossmintConfig>,
    /// Stripe Checkout, when `STRIPE_SECRET_KEY` is set; without it an order
    /// with `provider: "stripe"` is `422 PROVIDER_UNAVAILABLE`.
    pub stripe: Option<StripeConfig>,
    /// `CONFIRM_RATE_LIMIT_PER_MINUTE` (default 10): confirm
    /// requests per user in any 60 s.
    pub confirm_per_minute: u32,
    /// What one user, and everyone together, may ask of the payment
    /// providers (`ORDER_*`): see [`OrderLimits`].
    pub order_limits: OrderLimits,
    /// `CREDIT_VALIDITY_DAYS` (default none): as for the worker; written on
    /// each order created here.
    pub credit_terms: CreditTerms,
    /// `DATABASE_POOL_SIZE` (default 16).
    pub pool_size: u32,
    /// `CORS_ALLOWED_ORIGINS` (default none): the browser origins allowed to
    /// call the API, comma-separated exact origins (`https://app.example`).
    pub cors_origins: Vec<axum::http::HeaderValue>,
    /// `RUN_MIGRATIONS` (default true): `false` or `0` leaves migrating to
    /// `ledgerhook-admin migrate` and refuses to start on a schema that is
    /// behind.
    pub migrations: Migrations,
}

/// Where users' tokens come from; at least one of the two.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// `AUTH_JWT_SECRET`: the HS256 key of tokens the product's own backend
    /// mints, at least 32 bytes.
    pub shared_secret: Option<JwtSecret>,
    /// `AUTH_JWKS_URL` and its `AUTH_JWKS_*` settings: the sign-in
    /// provider's published keys (RS256, ES256, EdDSA).
    pub jwks: Option<JwksSettings>,
    /// `AUTH_MAX_TOKEN_LIFETIME_SECS` (default 86400), `AUTH_USER_CLAIM`
    /// (default `sub`), `AUTH_ISSUER` and `AUTH_AUDIENCE` (checked on the
    /// provider's tokens when set).
    pub policy: Policy,
}

impl AuthConfig {
    fn from_env<F: Fn(&str) -> Option<String>>(env: &mut EnvReader<F>) -> Self {
        let secret_text = env.optional("AUTH_JWT_SECRET");
        let secret_given = secret_text.is_some();
        let shared_secret = secret_text.and_then(|text| {
            let secret = JwtSecret::new(&text);
            if secret.is_none() {
                env.invalid(format!(
                    "AUTH_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes"
                ));
            }
            secret
        });
        let jwks = env.optional("AUTH_JWKS_URL").map(|url| {
            if !url.starts_with("https://") || reqwest::Url::parse(&url).is_err() {
                env.invalid("AUTH_JWKS_URL must be an https:// URL".into());
            }
            let settings = JwksSettings {
                url,
                max_age: Duration::from_secs(env.parsed_or("AUTH_JWKS_CACHE_SECS", 3600)),
                min_refresh: Duration::from_secs(env.parsed_or("AUTH_JWKS_MIN_REFRESH_SECS", 30)),
                timeout: Duration::from_millis(env.parsed_or("AUTH_JWKS_TIMEOUT_MS", 5000)),
            };
            if settings.min_refresh.is_zero() {
                env.invalid(
                    "AUTH_JWKS_MIN_REFRESH_SECS must be at least 1: it is what bounds fetches \
                     asked for by tokens with unknown keys"
                        .into(),
                );
            }
            if settings.max_age < settings.min_refresh {
                env.invalid(
                    "AUTH_JWKS_CACHE_SECS must be at least AUTH_JWKS_MIN_REFRESH_SECS".into(),
                );
            }
            if settings.timeout < Duration::from_millis(100) {
                env.invalid("AUTH_JWKS_TIMEOUT_MS must be at least 100".into());
            }
            settings
        });
        if !secret_given && jwks.is_none() {
            env.invalid(
                "no way to check users' tokens: set AUTH_JWT_SECRET (HS256), AUTH_JWKS_URL \
                 (the sign-in provider's keys), or both"
                    .into(),
            );
        }
        let max_lifetime_secs: i64 =
            env.parsed_or("AUTH_MAX_TOKEN_LIFETIME_SECS", DEFAULT_MAX_LIFETIME_SECS);
        if max_lifetime_secs < 1 {
            env.invalid("AUTH_MAX_TOKEN_LIFETIME_SECS must be at least 1".into());
        }
        let nonempty = |value: Option<String>| value.filter(|v| !v.trim().is_empty());
        let policy = Policy {
            max_lifetime_secs,
            user_claim: env.or_default("AUTH_USER_CLAIM", "sub"),
            issuer: nonempty(env.optional("AUTH_ISSUER")),
            audience: nonempty(env.optional("AUTH_AUDIENCE")),
        };
        if policy.user_claim.trim().is_empty() {
            env.invalid("AUTH_USER_CLAIM must name a claim".into());
        }
        Self {
            shared_secret,
            jwks,
            policy,
        }
    }
}

/// Bounds on order creation: each order is a call to a payment provider
/// and a pending row kept for the payment timeout, so an unbounded caller
/// costs us (and our provider quota) without paying for anything.
#[derive(Debug, Clone, Copy)]
pub struct OrderLimits {
    /// `ORDER_RATE_LIMIT_PER_MINUTE` (default 10): orders one user may
    /// create in any 60 s.
    pub per_user_per_minute: u32,
    /// `ORDER_RATE_LIMIT_GLOBAL_PER_MINUTE` (default 600): orders all users
    /// together may create in any 60 s (the providers' own rate limits are
    /// of this order).
    pub global_per_minute: u32,
    /// `MAX_PENDING_ORDERS_PER_USER` (default 5): orders one user may hold
    /// open (pending, younger than `PAYMENT_TIMEOUT_MINUTES`) at once.
    pub max_pending_per_user: u32,
    /// `PAYMENT_TIMEOUT_MINUTES` (default 30): when a pending order stops
    /// counting as open.
    pub payment_timeout: Duration,
}

impl OrderLimits {
    fn from_env<F: Fn(&str) -> Option<String>>(env: &mut EnvReader<F>) -> Self {
        let limits = Self {
            per_user_per_minute: env.parsed_or("ORDER_RATE_LIMIT_PER_MINUTE", 10),
            global_per_minute: env.parsed_or("ORDER_RATE_LIMIT_GLOBAL_PER_MINUTE", 600),
            max_pending_per_user: env.parsed_or("MAX_PENDING_ORDERS_PER_USER", 5),
            payment_timeout: Duration::from_secs(
                env.parsed_or("PAYMENT_TIMEOUT_MINUTES", 30u64)
                    .saturating_mul(60),
            ),
        };
        for (name, value) in [
            ("ORDER_RATE_LIMIT_PER_MINUTE", limits.per_user_per_minute),
            (
                "ORDER_RATE_LIMIT_GLOBAL_PER_MINUTE",
                limits.global_per_minute,
            ),
            ("MAX_PENDING_ORDERS_PER_USER", limits.max_pending_per_user),
        ] {
            if value == 0 {
                env.invalid(format!("{name} must be at least 1"));
            }
        }
        limits
    }
}

/// Crossmint's settings; present only with a server key.
#[derive(Debug, Clone)]
pub struct CrossmintConfig {
    /// `CROSSMINT_API_URL` (default: Crossmint's staging API).
    pub api_url: String,
    /// `CROSSMINT_SERVER_API_KEY`: Crossmint's server-side key.
    pub api_key: SecretText,
    /// `CROSSMINT_COLLECTION_ID`: the Crossmint collection the packages are
    /// sold through (the checkout's line item). Required with a key.
    pub collection_id: String,
    /// `CROSSMINT_TIMEOUT_MS` (default 10000): a slower answer is a
    /// CROSSMINT_ERROR, and no order is recorded.
    pub timeout: Duration,
}

impl CrossmintConfig {
    /// `None` without a key; with one, the collection is required.
    fn from_env<F: Fn(&str) -> Option<String>>(env: &mut EnvReader<F>) -> Option<Self> {
        let api_url = env
            .or_default("CROSSMINT_API_URL", DEFAULT_CROSSMINT_API_URL)
            .trim_end_matches('/')
            .to_owned();
        let timeout = Duration::from_millis(env.parsed_or("CROSSMINT_TIMEOUT_MS", 10_000));
        let api_key = env.optional("CROSSMINT_SERVER_API_KEY")?;
        let collection_id = env.required("CROSSMINT_COLLECTION_ID").unwrap_or_default();
        Some(Self {
            api_url,
            api_key: api_key.into(),
            collection_id,
            timeout,
        })
    }
}

/// Stripe Checkout's settings; present only with a secret key.
#[derive(Debug, Clone)]
pub struct StripeConfig {
    /// `STRIPE_API_URL` (default `https://api.stripe.com`).
    pub api_url: String,
    /// `STRIPE_SECRET_KEY`: `sk_live_...`, `sk_test_...` or a restricted
    /// `rk_...` key allowed to write Checkout Sessions.
    pub secret_key: SecretText,
    /// `STRIPE_SUCCESS_URL` and `STRIPE_CANCEL_URL`, both required with a
    /// key: where the hosted page sends the buyer. Sent verbatim, so
    /// Stripe's `{CHECKOUT_SESSION_ID}` placeholder may be used.
    pub return_urls: ReturnUrls,
    /// `STRIPE_TIMEOUT_MS` (default 10000): a slower answer is a
    /// STRIPE_ERROR, and no order is recorded.
    pub timeout: Duration,
    /// `PAYMENT_TIMEOUT_MINUTES` (default 30, as the worker reads it): the
    /// hosted page stops taking payment then (at least 30 minutes, at most
    /// 24 hours: Stripe's range), when the worker expires the order.
    pub payment_timeout: Duration,
    /// `STRIPE_PORTAL_RETURN_URL` (default: `STRIPE_CANCEL_URL`): where the
    /// customer portal sends the user back.
    pub portal_return_url: String,
}

impl StripeConfig {
    /// `None` without a key. With one, the return URLs are required and
    /// must be absolute http(s) URLs; a problem is recorded by name.
    fn from_env<F: Fn(&str) -> Option<String>>(env: &mut EnvReader<F>) -> Option<Self> {
        let timeout = Duration::from_millis(env.parsed_or("STRIPE_TIMEOUT_MS", 10_000));
        let payment_timeout = Duration::from_secs(
            env.parsed_or("PAYMENT_TIMEOUT_MINUTES", 30u64)
                .saturating_mul(60),
        );
        let api_url = env
            .or_default("STRIPE_API_URL", DEFAULT_STRIPE_API_URL)
            .trim_end_matches('/')
            .to_owned();
        // The secret key travels in every request: plain http only to a
        // stand-in on this machine (the fake Stripe of the tests and run.sh).
        let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
            .iter()
            .any(|local| {
                api_url
                    .strip_prefix(local)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
            });
        if !api_url.starts_with("https://") && !loopback {
            env.invalid(
                "STRIPE_API_URL must be https:// (plain http only to 127.0.0.1 or localhost)"
                    .into(),
            );
        }
        let secret_key = env.optional("STRIPE_SECRET_KEY")?;
        if secret_key.trim() != secret_key || secret_key.contains(char::is_whitespace) {
            env.invalid("STRIPE_SECRET_KEY contains white space".into());
        }
        let mut url = |name: &'static str| {
            let value = env.required(name)?;
            let scheme_ok = value.starts_with("https://") || value.starts_with("http://");
            if !scheme_ok || value.contains(char::is_whitespace) {
                env.invalid(format!("{name} must be an absolute http(s) URL"));
            }
            Some(value)
        };
        let success_url = url("STRIPE_SUCCESS_URL");
        let cancel_url = url("STRIPE_CANCEL_URL");
        let portal_return_url = match env.optional("STRIPE_PORTAL_RETURN_URL") {
            Some(value)
                if !(value.starts_with("https://") || value.starts_with("http://"))
                    || value.contains(char::is_whitespace) =>
            {
                env.invalid("STRIPE_PORTAL_RETURN_URL must be an absolute http(s) URL".into());
                value
            }
            Some(value) => value,
            None => cancel_url.clone().unwrap_or_default(),
        };
        Some(Self {
            api_url,
            secret_key: secret_key.into(),
            return_urls: ReturnUrls {
                success_url: success_url.unwrap_or_default(),
                cancel_url: cancel_url.unwrap_or_default(),
            },
            timeout,
            payment_timeout,
            portal_return_url,
        })
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_reader(EnvReader::from_process())
    }

    pub fn from_reader<F: Fn(&str) -> Option<String>>(
        mut env: EnvReader<F>,
    ) -> Result<Self, ConfigError> {
        let config = Self {
            database_url: env.or_default("DATABASE_URL", DEFAULT_DATABASE_URL).into(),
            listen_addr: env.parsed_or("LISTEN_ADDR", ([127, 0, 0, 1], 8081).into()),
            metrics_addr: env.parsed_or("METRICS_ADDR", ([127, 0, 0, 1], 9190).into()),
            auth: AuthConfig::from_env(&mut env),
            http: ServerLimits::from_env(&mut env),
            crossmint: CrossmintConfig::from_env(&mut env),
            stripe: StripeConfig::from_env(&mut env),
            confirm_per_minute: env.parsed_or("CONFIRM_RATE_LIMIT_PER_MINUTE", 10),
            order_limits: OrderLimits::from_env(&mut env),
            credit_terms: env.parsed_or("CREDIT_VALIDITY_DAYS", CreditTerms::default()),
            pool_size: env.parsed_or("DATABASE_POOL_SIZE", 16),
            cors_origins: match crate::cors::parse_origins(
                &env.optional("CORS_ALLOWED_ORIGINS").unwrap_or_default(),
            ) {
                Ok(origins) => origins,
                Err(problem) => {
                    env.invalid(format!("CORS_ALLOWED_ORIGINS: {problem}"));
                    Vec::new()
                }
            },
            migrations: env.parsed_or("RUN_MIGRATIONS", Migrations::Apply),
        };
        if config.confirm_per_minute == 0 {
            env.invalid("CONFIRM_RATE_LIMIT_PER_MINUTE must be at least 1".into());
        }
        if config.crossmint.is_none() && config.stripe.is_none() {
            env.invalid(
                "no payment provider: set CROSSMINT_SERVER_API_KEY (with CROSSMINT_COLLECTION_ID) \
                 or STRIPE_SECRET_KEY, or both"
                    .into(),
            );
        }
        CaFile::check_ssl_cert_file(&mut env);
        env.finish()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_reader(EnvReader::new(move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }))
    }

    #[test]
    fn every_missing_secret_is_named_at_once() {
        let error = from(&[]).unwrap_err().to_string();
        for name in [
            "AUTH_JWT_SECRET",
            "CROSSMINT_SERVER_API_KEY",
            "STRIPE_SECRET_KEY",
        ] {
            assert!(error.contains(name), "{error}");
        }
        let error = from(&[("CROSSMINT_SERVER_API_KEY", "sk_staging_fake")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("CROSSMINT_COLLECTION_ID"), "{error}");
        assert!(!error.contains("sk_staging_fake"), "{error}");
    }

    #[test]
    fn either_provider_alone_is_enough() {
        let stripe_only = from(&[
            ("AUTH_JWT_SECRET", "test-only-jwt-secret-0123456789abcdef"),
            ("STRIPE_SECRET_KEY", "sk_test_fake"),
            ("STRIPE_SUCCESS_URL", "https://shop.example/ok"),
            ("STRIPE_CANCEL_URL", "https://shop.example/cancel"),
        ])
        .unwrap();
        assert!(stripe_only.crossmint.is_none() && stripe_only.stripe.is_some());
    }

    #[test]
    fn the_providers_keys_alone_are_enough_and_only_over_https() {
        let provider = [
            (
                "AUTH_JWKS_URL",
                "https://sign-in.example/.well-known/jwks.json",
            ),
            ("CROSSMINT_SERVER_API_KEY", "sk_staging_fake"),
            ("CROSSMINT_COLLECTION_ID", "fake"),
        ];
        let config = from(&provider).unwrap();
        assert!(config.auth.shared_secret.is_none() && config.auth.jwks.is_some());
        assert_eq!(config.auth.policy.user_claim, "sub");

        let mut plain = provider.to_vec();
        plain[0].1 = "http://sign-in.example/jwks.json";
        let error = from(&plain).unwrap_err().to_string();
        assert!(
            error.contains("AUTH_JWKS_URL must be an https:// URL"),
            "{error}"
        );

        let mut unbounded = provider.to_vec();
        unbounded.push(("AUTH_JWKS_MIN_REFRESH_SECS", "0"));
        let error = from(&unbounded).unwrap_err().to_string();
        assert!(
            error.contains("AUTH_JWKS_MIN_REFRESH_SECS must be at least 1"),
            "{error}"
        );

        let mut no_claim = provider.to_vec();
        no_claim.push(("AUTH_USER_CLAIM", " "));
        let error = from(&no_claim).unwrap_err().to_string();
        assert!(
            error.contains("AUTH_USER_CLAIM must name a claim"),
            "{error}"
        );
    }

    #[test]
    fn a_short_jwt_secret_is_refused_without_showing_it() {
        let error = from(&[
            ("AUTH_JWT_SECRET", "hunter2"),
            ("CROSSMINT_SERVER_API_KEY", "sk_staging_fake"),
            ("CROSSMINT_COLLECTION_ID", "fake"),
        ])
        .unwrap_err()
        .to_string();
        assert!(error.contains("AUTH_JWT_SECRET"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn defaults_point_at_crossmint_staging() {
        let config = from(&[
            ("AUTH_JWT_SECRET", "test-only-jwt-secret-0123456789abcdef"),
            ("CROSSMINT_SERVER_API_KEY", "sk_staging_fake"),
            ("CROSSMINT_COLLECTION_ID", "fake"),
        ])
        .unwrap();
        assert_eq!(config.crossmint.unwrap().api_url, DEFAULT_CROSSMINT_API_URL);
        assert_eq!(config.confirm_per_minute, 10);
        assert_eq!(config.metrics_addr.port(), 9190);
        assert!(config.stripe.is_none(), "Stripe is off without a key");
    }

    const BASE: [(&str, &str); 3] = [
        ("AUTH_JWT_SECRET", "test-only-jwt-secret-0123456789abcdef"),
        ("CROSSMINT_SERVER_API_KEY", "sk_staging_fake"),
        ("CROSSMINT_COLLECTION_ID", "fake"),
    ];

    #[test]
    fn a_stripe_key_needs_both_return_urls_named_without_the_key() {
        let mut pairs = BASE.to_vec();
        pairs.push(("STRIPE_SECRET_KEY", "sk_test_hunter2"));
        pairs.push(("STRIPE_CANCEL_URL", "shop.example/cancel"));
        let error = from(&pairs).unwrap_err().to_string();
        assert!(error.contains("STRIPE_SUCCESS_URL"), "{error}");
        assert!(error.contains("STRIPE_CANCEL_URL must be"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn the_stripe_api_is_https_unless_it_is_on_this_machine() {
        let with_url = |url: &'static str| {
            let mut pairs = BASE.to_vec();
            pairs.extend([
                ("STRIPE_SECRET_KEY", "sk_test_fake"),
                ("STRIPE_SUCCESS_URL", "https://shop.example/ok"),
                ("STRIPE_CANCEL_URL", "https://shop.example/cancel"),
                ("STRIPE_API_URL", url),
            ]);
            from(&pairs).map(|_| ()).map_err(|e| e.to_string())
        };
        assert!(with_url("http://127.0.0.1:18090").is_ok());
        assert!(with_url("http://localhost:18090/").is_ok());
        assert!(with_url("https://api.stripe.com").is_ok());
        let error = with_url("http://api.stripe.com").unwrap_err();
        assert!(error.contains("STRIPE_API_URL must be https://"), "{error}");
        assert!(with_url("http://localhost.evil.example").is_err());
    }

    #[test]
    fn stripe_defaults_to_its_api_and_keeps_the_session_placeholder() {
        let mut pairs = BASE.to_vec();
        pairs.push(("STRIPE_SECRET_KEY", "sk_test_fake"));
        pairs.push((
            "STRIPE_SUCCESS_URL",
            "https://shop.example/ok?session={CHECKOUT_SESSION_ID}",
        ));
        pairs.push(("STRIPE_CANCEL_URL", "https://shop.example/cancel"));
        let stripe = from(&pairs).unwrap().stripe.unwrap();
        assert_eq!(stripe.api_url, DEFAULT_STRIPE_API_URL);
        assert_eq!(
            stripe.return_urls.success_url,
            "https://shop.example/ok?session={CHECKOUT_SESSION_ID}"
        );
        assert!(!format!("{stripe:?}").contains("sk_test_fake"));
    }
}
