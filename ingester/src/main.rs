use anyhow::Context as _;
use clap::Parser;
use ledgerhook_ingester::{App, Config};
use ledgerhook_runtime::{shutdown, telemetry};
use mimalloc::MiMalloc;

/// mimalloc instead of glibc's allocator: measured in the README's
/// benchmark section (fewer instructions per delivery, flat RSS).
#[global_allocator]
static ALLOCATOR: MiMalloc = MiMalloc;

/// Receives signed payment webhooks (Crossmint, Stripe) and queues them for the worker.
///
/// Receives payment webhooks from Crossmint and Stripe over HTTP, checks their signatures, records each delivery in PostgreSQL and publishes it to RabbitMQ for ledgerhook-worker.
///
/// Configuration comes from environment variables, not flags; the main
/// ones:
///
///   LISTEN_ADDR
///   METRICS_ADDR
///   DATABASE_URL
///   AMQP_URL
///   CROSSMINT_WEBHOOK_SECRET
///   STRIPE_WEBHOOK_SECRET
///   WEBHOOK_MAX_BODY_BYTES
///   RUST_LOG
///
/// See the README's "Configuration" section for all of them and their
/// defaults.
#[derive(Parser)]
#[command(name = "ledgerhook-ingester", version, verbatim_doc_comment)]
struct Cli {}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // First, before any side effect: --help and --version exit here.
    Cli::parse();
    let metrics = telemetry::start_service(
        "ingester",
        ledgerhook_runtime::build!(),
        ledgerhook_ingester::metrics::describe,
    )?;
    let config = Config::from_env()?;
    let app = App::build(config, metrics)
        .await
        .context("starting the ingester")?;
    tracing::info!(
        http = %app.local_addr(),
        metrics = %app.metrics_addr(),
        "ingester listening"
    );
    shutdown::report(
        "ingester",
        app.run_until_stopped(shutdown::on_signal()).await,
    )
}
