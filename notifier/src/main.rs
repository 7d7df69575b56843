use anyhow::Context as _;
use ledgerhook_notifier::{App, Config};
use ledgerhook_shared::{shutdown, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init_tracing();
    let config = Config::from_env()?;
    let metrics = telemetry::install_metrics_recorder()?;
    let app = App::build(config, metrics)
        .await
        .context("starting the notifier")?;
    tracing::info!(metrics = %app.metrics_addr(), channels = %app.channels(), "notifier started");
    let result = app.run_until_stopped(shutdown::on_signal()).await;
    match &result {
        Ok(()) => tracing::info!("notifier stopped"),
        Err(e) => tracing::error!(error = format!("{e:#}"), "notifier failed"),
    }
    result
}
