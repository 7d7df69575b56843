//! Building and running the console: listeners bound first (port 0
//! allowed) so callers learn the addresses before anything is served.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::middleware;
use axum::routing::{get, post};
use ledgerhook_admin::Peers;
use ledgerhook_providers::crossmint::OrdersApi;
use ledgerhook_providers::stripe::reads::StripeReads;
use ledgerhook_runtime::http;
use ledgerhook_runtime::telemetry::MetricsServer;
use ledgerhook_store::db;
use ledgerhook_store::operators::SessionTimeouts;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::{csrf, login, session};
use crate::config::{Config, ProxyAuth};
use crate::{assets, pages, security};

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub sessions: SessionTimeouts,
    pub login_attempts: u32,
    pub proxy: Option<ProxyAuth>,
    /// A hash of a random password: an unknown name is checked against it,
    /// so it takes as long as a known one.
    pub decoy_hash: Arc<String>,
    /// The database and the broker, for the actions shared with
    /// ledgerhook-admin.
    pub peers: Arc<Peers>,
    /// The providers' APIs, when configured: a held order's provider view.
    pub crossmint: Option<OrdersApi>,
    pub stripe: Option<StripeReads>,
}

impl AppState {
    pub fn new(pool: PgPool, config: &Config) -> anyhow::Result<Self> {
        Ok(Self {
            pool,
            sessions: config.sessions,
            login_attempts: config.login_attempts,
            proxy: config.proxy.clone(),
            decoy_hash: Arc::new(ledgerhook_admin::password::hash(
                &ledgerhook_admin::password::one_time(),
            )?),
            peers: Arc::new(Peers::new(
                config.database_url.expose().to_owned(),
                config.queue_prefix.clone(),
                config.broker.clone(),
            )),
            crossmint: config.crossmint.clone(),
            stripe: config.stripe.clone(),
        })
    }
}

/// Every route: the sign-in page and static files open, the rest behind a
/// session (then the CSRF guard for state changes).
pub fn router(state: AppState) -> Router {
    let signed = pages::router()
        .route("/logout", post(login::sign_out))
        .route(
            "/password",
            get(login::password_page).post(login::change_password),
        )
        .route_layer(middleware::from_fn(csrf::guard))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            session::require,
        ));
    let open = Router::new()
        .route("/login", get(login::page).post(login::sign_in))
        .route("/healthz", get(|| async { "ok" }))
        // Browsers ask; nothing to show.
        .route("/favicon.ico", get(|| async { axum::http::StatusCode::NO_CONTENT }))
        .route("/readyz", get(ready))
        .merge(assets::router());
    let routes = signed
        .merge(open)
        .fallback(|| async { crate::refusal::Refusal::not_found("no such page") });
    http::with_http_layers(routes, "console")
        .layer(middleware::from_fn(security::headers))
        .with_state(state)
}

/// Ready while the database answers (the console has nothing else to wait
/// for: the broker is reached per action).
async fn ready(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> axum::http::StatusCode {
    if db::answers(&state.pool).await {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    }
}

pub struct App {
    listener: TcpListener,
    metrics: MetricsServer,
    state: AppState,
    limits: http::ServerLimits,
}

impl App {
    pub async fn build(config: Config, metrics: PrometheusHandle) -> anyhow::Result<Self> {
        let pool = db::connect_bounded(
            config.database_url.expose(),
            config.pool_size,
            "ledgerhook-console",
            config.migrations,
            Some(config.statement_timeout),
        )
        .await?;
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| format!("binding {}", config.listen_addr))?;
        let metrics = MetricsServer::bind(config.metrics_addr, metrics).await?;
        // Jobs whose console stopped (this one, before a restart) say so.
        let interrupted =
            ledgerhook_store::replay_jobs::fail_stale(&pool, pages::JOB_STALE_SECS).await?;
        if interrupted > 0 {
            tracing::warn!(
                jobs = interrupted,
                "replay jobs interrupted by a stopped console marked failed"
            );
        }
        let state = AppState::new(pool, &config)?;
        Ok(Self {
            listener,
            metrics,
            state,
            limits: config.http,
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
        http::serve(self.listener, router(self.state), self.limits, shutdown).await;
        let _ = metrics_task.await;
        Ok(())
    }
}
