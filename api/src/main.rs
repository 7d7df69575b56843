use anyhow::Context as _;
use ledgerhook_api::{App, Config};
use ledgerhook_shared::{shutdown, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init_tracing();
    let config = Config::from_env()?;
    let metrics = telemetry::install_metrics_recorder()?;
    let app = App::build(config, metrics)
        .await
        .context("starting the API")?;
    tracing::info!(
        http = %app.local_addr(),
        metrics = %app.metrics_addr(),
        "api listening"
    );
    let result = app.run_until_stopped(shutdown::on_signal()).await;
    match &result {
        Ok(()) => tracing::info!("api stopped"),
        Err(e) => tracing::error!(error = format!("{e:#}"), "api failed"),
    }
    result
}
