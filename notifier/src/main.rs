use anyhow::Context as _;
use clap::Parser;
use ledgerhook_notifier::{App, Config};
use ledgerhook_runtime::{shutdown, telemetry};

/// Sends the notifications grants leave in the outbox: the buyer's email, the team's chat.
///
/// Polls the notification outbox in PostgreSQL and sends what grants leave there: the buyer's email (SMTP) and the team's chat (Feishu webhook), with retries.
///
/// Configuration comes from environment variables, not flags; the main
/// ones:
///
///   DATABASE_URL
///   METRICS_ADDR
///   NOTIFY_CHANNELS
///   NOTIFY_EMAIL_FROM
///   NOTIFY_FEISHU_WEBHOOK_URL
///   NOTIFY_POLL_MS
///   NOTIFY_BATCH_SIZE
///   NOTIFY_CONCURRENCY
///   NOTIFY_MAX_ATTEMPTS
///   RUST_LOG
///
/// See the README's "Configuration" section for all of them and their
/// defaults.
#[derive(Parser)]
#[command(name = "ledgerhook-notifier", version, verbatim_doc_comment)]
struct Cli {}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // First, before any side effect: --help and --version exit here.
    Cli::parse();
    let metrics = telemetry::start_service(
        "notifier",
        ledgerhook_runtime::build!(),
        ledgerhook_notifier::metrics::describe,
    )?;
    let config = Config::from_env()?;
    let app = App::build(config, metrics)
        .await
        .context("starting the notifier")?;
    tracing::info!(metrics = %app.metrics_addr(), channels = %app.channels(), "notifier started");
    shutdown::report(
        "notifier",
        app.run_until_stopped(shutdown::on_signal()).await,
    )
}
