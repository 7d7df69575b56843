use anyhow::Context as _;
use clap::Parser;
use ledgerhook_console::{App, Config};
use ledgerhook_runtime::{shutdown, telemetry};

/// The operator console: find any payment, see why, act, all audited.
///
/// Serves the console's pages (deliveries, orders held for review, users,
/// parked deliveries, the pause switch, the audit trail) to operators
/// added with `ledgerhook-admin operator add NAME --role viewer|operator`.
/// Listens on loopback by default.
///
/// Configuration comes from environment variables, not flags; the main
/// ones:
///
///   CONSOLE_LISTEN_ADDR
///   METRICS_ADDR
///   DATABASE_URL
///   AMQP_URL
///   QUEUE_PREFIX
///   CONSOLE_IDLE_TIMEOUT_MINUTES
///   CONSOLE_SESSION_HOURS
///   CONSOLE_LOGIN_ATTEMPTS_PER_15_MINUTES
///   CONSOLE_STATEMENT_TIMEOUT_MS
///   CONSOLE_PROXY_SECRET
///   CONSOLE_PROXY_USER_HEADER
///   RUST_LOG
///
/// See the README's "Operator console" section for all of them and their
/// defaults.
#[derive(Parser)]
#[command(name = "ledgerhook-console", version, verbatim_doc_comment)]
struct Cli {}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // First, before any side effect: --help and --version exit here.
    Cli::parse();
    let metrics = telemetry::start_service(
        "console",
        ledgerhook_runtime::build!(),
        ledgerhook_console::metrics::describe,
    )?;
    let config = Config::from_env()?;
    let app = App::build(config, metrics)
        .await
        .context("starting the console")?;
    tracing::info!(
        http = %app.local_addr(),
        metrics = %app.metrics_addr(),
        "console listening"
    );
    shutdown::report(
        "console",
        app.run_until_stopped(shutdown::on_signal()).await,
    )
}
