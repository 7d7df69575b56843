use anyhow::Context as _;
use ledgerhook_shared::{shutdown, telemetry};
use ledgerhook_worker::{App, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init_tracing();
    let config = Config::from_env()?;
    let metrics = telemetry::install_metrics_recorder()?;
    let app = App::build(config, metrics)
        .await
        .context("starting the worker")?;
    tracing::info!(metrics = %app.metrics_addr(), "worker started");
    let result = app.run_until_stopped(shutdown::on_signal()).await;
    match &result {
        Ok(()) => tracing::info!("worker stopped"),
        Err(e) => tracing::error!(error = format!("{e:#}"), "worker failed"),
    }
    result
}
