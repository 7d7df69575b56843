use anyhow::Context as _;
use clap::Parser;
use ledgerhook_api::{App, Config};
use ledgerhook_runtime::{shutdown, telemetry};

/// The frontend's API: packages, orders, confirmation, history, balance and spending.
///
/// Serves the frontend's HTTP API (packages, orders, payment confirmation, history, balance and spending) over the ledger in PostgreSQL, creating payments at Crossmint or Stripe; requests carry a bearer token signed with AUTH_JWT_SECRET.
///
/// Configuration comes from environment variables, not flags; the main
/// ones:
///
///   LISTEN_ADDR
///   METRICS_ADDR
///   DATABASE_URL
///   DATABASE_POOL_SIZE
///   AUTH_JWT_SECRET
///   CROSSMINT_API_URL
///   CROSSMINT_SERVER_API_KEY
///   CROSSMINT_COLLECTION_ID
///   STRIPE_API_URL
///   STRIPE_SECRET_KEY
///   STRIPE_SUCCESS_URL
///   STRIPE_CANCEL_URL
///   RUST_LOG
///
/// See the README's "Configuration" section for all of them and their
/// defaults.
#[derive(Parser)]
#[command(name = "ledgerhook-api", version, verbatim_doc_comment)]
struct Cli {}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // First, before any side effect: --help and --version exit here.
    Cli::parse();
    let metrics = telemetry::start_service(
        "api",
        ledgerhook_runtime::build!(),
        ledgerhook_api::metrics::describe,
    )?;
    let config = Config::from_env()?;
    let app = App::build(config, metrics)
        .await
        .context("starting the API")?;
    tracing::info!(
        http = %app.local_addr(),
        metrics = %app.metrics_addr(),
        "api listening"
    );
    shutdown::report("api", app.run_until_stopped(shutdown::on_signal()).await)
}
