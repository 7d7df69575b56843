//! `ledgerhook-fake-stripe [ADDR] [WEBHOOK_URL]`: the tests' Stripe stand-in
//! as a process, for trying the API and the ingester locally. Prints the
//! `STRIPE_API_URL` and `STRIPE_SECRET_KEY` to give the API. Opening a
//! session's `url` pays it: the fake sends a `checkout.session.completed`
//! to `WEBHOOK_URL` (default the local ingester's `/webhooks/stripe`),
//! signed with `STRIPE_WEBHOOK_SECRET` (default `FAKE_WEBHOOK_SECRET`).

use std::net::SocketAddr;

use clap::Parser;
use ledgerhook_runtime::config::process_env;
use ledgerhook_tests::fake_stripe::{FAKE_SECRET_KEY, FAKE_WEBHOOK_SECRET, FakeStripe};

/// The tests' Stripe stand-in as a process: prints the STRIPE_API_URL and
/// STRIPE_SECRET_KEY to give the API, then serves until killed.
///
/// Opening a session's `url` pays it: the fake sends a
/// `checkout.session.completed` to WEBHOOK_URL, signed with
/// STRIPE_WEBHOOK_SECRET from the environment (default the tests' fake
/// secret).
#[derive(Parser)]
#[command(name = "ledgerhook-fake-stripe", version)]
struct Cli {
    /// The address to listen on (port 0: any free port).
    #[arg(value_name = "ADDR", default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Where paid sessions' events are sent.
    #[arg(
        value_name = "WEBHOOK_URL",
        default_value = "http://127.0.0.1:8080/webhooks/stripe"
    )]
    webhook_url: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let Cli { addr, webhook_url } = Cli::parse();
    let secret = process_env("STRIPE_WEBHOOK_SECRET").unwrap_or_else(|| FAKE_WEBHOOK_SECRET.into());
    let fake = FakeStripe::start_on(addr).await?;
    fake.send_events_to(&webhook_url, &secret);
    println!(
        "STRIPE_API_URL={} STRIPE_SECRET_KEY={FAKE_SECRET_KEY} (events to {webhook_url})",
        fake.api_url
    );
    fake.serve_forever().await;
    Ok(())
}
