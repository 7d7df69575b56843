use anyhow::Context as _;
use clap::Parser;
use ledgerhook_runtime::{shutdown, telemetry};
use ledgerhook_worker::{App, Config};
use mimalloc::MiMalloc;

/// mimalloc instead of glibc's allocator: measured in the README's
/// benchmark section (fewer instructions per delivery, flat RSS).
#[global_allocator]
static ALLOCATOR: MiMalloc = MiMalloc;

/// Turns queued payment deliveries into ledger grants, reversals and orders.
///
/// Consumes the deliveries the ingester queues in RabbitMQ and applies them to the ledger in PostgreSQL: orders, credit grants, refunds and disputes; also runs reconciliation, payment timeouts, credit expiry, retention and the outbox relay.
///
/// Configuration comes from environment variables, not flags; the main
/// ones:
///
///   DATABASE_URL
///   DATABASE_POOL_SIZE
///   AMQP_URL
///   QUEUE_PREFIX
///   METRICS_ADDR
///   WORKER_CONCURRENCY
///   WORKER_BATCH_SIZE
///   CROSSMINT_API_URL
///   CROSSMINT_SERVER_API_KEY
///   STRIPE_SECRET_KEY
///   RECONCILE_INTERVAL_SECS
///   RETENTION_DAYS
///   RETENTION_INTERVAL_SECS
///   RUST_LOG
///
/// See the README's "Configuration" section for all of them and their
/// defaults.
#[derive(Parser)]
#[command(name = "ledgerhook-worker", version, verbatim_doc_comment)]
struct Cli {}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // First, before any side effect: --help and --version exit here.
    Cli::parse();
    let metrics = telemetry::start_service(
        "worker",
        ledgerhook_runtime::build!(),
        ledgerhook_worker::metrics::describe,
    )?;
    let config = Config::from_env()?;
    let app = App::build(config, metrics)
        .await
        .context("starting the worker")?;
    tracing::info!(metrics = %app.metrics_addr(), "worker started");
    shutdown::report("worker", app.run_until_stopped(shutdown::on_signal()).await)
}
