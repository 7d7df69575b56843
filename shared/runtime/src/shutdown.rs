//! Turning SIGTERM and ctrl-c into a cancellation token the app is given,
//! and saying how a service ended.

use tokio_util::sync::CancellationToken;

/// A token cancelled on the first SIGTERM or ctrl-c. The binaries create it
/// and pass it in; tests pass their own.
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => tracing::info!("ctrl-c received, shutting down"),
            _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
        }
        cancel.cancel();
    });
    token
}

/// How a service's run ended, in its log: `{service} stopped`, or
/// `{service} failed` with the error; the result is passed on for `main`
/// to return.
pub fn report(service: &str, result: anyhow::Result<()>) -> anyhow::Result<()> {
    match &result {
        Ok(()) => tracing::info!("{service} stopped"),
        Err(e) => tracing::error!(error = format!("{e:#}"), "{service} failed"),
    }
    result
}
