//! Building and running the API: listeners bound first (port 0 allowed) so
//! callers learn the addresses before anything is served.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ledgerhook_domain::CreditTerms;
use ledgerhook_runtime::http;
use ledgerhook_runtime::telemetry::MetricsServer;
use ledgerhook_store::db;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::{Authenticator, Jwks};
use crate::config::Config;
use crate::crossmint::Crossmint;
use crate::rate_limit::RateLimit;
use crate::routes;
use crate::stripe::Stripe;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    /// How users' tokens are checked (shared secret, provider's keys).
    pub auth: Arc<Authenticator>,
    /// Crossmint's orders API, when configured.
    pub crossmint: Option<Crossmint>,
    /// `None` when `STRIPE_SECRET_KEY` is not set.
    pub stripe: Option<Stripe>,
    pub confirm_limit: RateLimit,
    /// Orders one user may create, all users together may create, and one
    /// user may hold open (see [`crate::config::OrderLimits`]).
    pub order_limit: RateLimit,
    pub global_order_limit: RateLimit,
    pub order_limits: crate::config::OrderLimits,
    pub credit_terms: Arc<CreditTerms>,
    /// How long an order's `Idempotency-Key` reservation may be held before
    /// another request takes it over: the slower provider's timeout and a
    /// margin for recording the order.
    pub order_key_lease: Duration,
}

/// What recording an order may take after the provider answered.
const ORDER_KEY_LEASE_MARGIN: Duration = Duration::from_secs(5);

pub struct App {
    listener: TcpListener,
    metrics: MetricsServer,
    state: AppState,
    limits: http::ServerLimits,
    cors_origins: Vec<axum::http::HeaderValue>,
}

impl App {
    pub async fn build(config: Config, metrics: PrometheusHandle) -> anyhow::Result<Self> {
        let pool = db::connect(
            config.database_url.expose(),
            config.pool_size,
            "ledgerhook-api",
            config.migrations,
        )
        .await?;
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| format!("binding {}", config.listen_addr))?;
        let metrics = MetricsServer::bind(config.metrics_addr, metrics).await?;
        let jwks = config
            .auth
            .jwks
            .clone()
            .map(Jwks::new)
            .transpose()
            .context("building the HTTPS client for AUTH_JWKS_URL")?;
        if let Some(jwks) = &jwks {
            // Fetched now so the first user does not wait for it; a failure
            // is logged, and the next token asks again.
            jwks.refresh().await;
            if config.auth.policy.audience.is_none() {
                tracing::warn!(
                    "AUTH_JWKS_URL without AUTH_AUDIENCE: any token the sign-in provider signs \
                     for any of its applications is accepted here"
                );
            }
        }
        let state = AppState {
            pool,
            auth: Arc::new(Authenticator {
                shared_secret: config.auth.shared_secret.clone(),
                jwks,
                policy: config.auth.policy.clone(),
            }),
            crossmint: config
                .crossmint
                .as_ref()
                .map(|c| Crossmint::new(&c.api_url, &c.api_key, &c.collection_id, c.timeout))
                .transpose()
                .context("building the HTTPS client for Crossmint")?,
            stripe: config
                .stripe
                .as_ref()
                .map(Stripe::new)
                .transpose()
                .context("building the HTTPS client for Stripe")?,
            confirm_limit: RateLimit {
                action: crate::metrics::CONFIRM,
                limit: config.confirm_per_minute,
                window: Duration::from_secs(60),
            },
            order_limit: RateLimit {
                action: crate::metrics::ORDERS,
                limit: config.order_limits.per_user_per_minute,
                window: Duration::from_secs(60),
            },
            global_order_limit: RateLimit {
                action: crate::metrics::ORDERS_GLOBAL,
                limit: config.order_limits.global_per_minute,
                window: Duration::from_secs(60),
            },
            order_limits: config.order_limits,
            credit_terms: Arc::new(config.credit_terms),
            // The longest a provider call may take, so a reservation is not
            // taken over while its request still waits on the provider.
            order_key_lease: [
                config.crossmint.as_ref().map(|c| c.timeout),
                config.stripe.as_ref().map(|s| s.timeout),
            ]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or_default()
                + ORDER_KEY_LEASE_MARGIN,
        };
        Ok(Self {
            listener,
            metrics,
            state,
            limits: config.http,
            cors_origins: config.cors_origins,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics.local_addr()
    }

    /// Serves until `shutdown`, then finishes in-flight requests.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let metrics_task = tokio::spawn(self.metrics.run(shutdown.clone()));
        http::serve(
            self.listener,
            routes::router(self.state, &self.cors_origins),
            self.limits,
            shutdown,
        )
        .await;
        let _ = metrics_task.await;
        Ok(())
    }
}
