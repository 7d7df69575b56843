//! `ledgerhook-fake-crossmint [ADDR]`: the tests' Crossmint stand-in as a
//! process, for trying the API locally and for the schemathesis run. Prints
//! the `CROSSMINT_API_URL` to use; accepts the key `FAKE_API_KEY`.

use std::net::SocketAddr;

use clap::Parser;
use ledgerhook_tests::fake_crossmint::{FAKE_API_KEY, FakeCrossmint};

/// The tests' Crossmint stand-in as a process: prints the CROSSMINT_API_URL
/// and CROSSMINT_SERVER_API_KEY to give the API, then serves until killed.
#[derive(Parser)]
#[command(name = "ledgerhook-fake-crossmint", version)]
struct Cli {
    /// The address to listen on (port 0: any free port).
    #[arg(value_name = "ADDR", default_value = "127.0.0.1:0")]
    addr: SocketAddr,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let Cli { addr } = Cli::parse();
    let fake = FakeCrossmint::start_on(addr).await?;
    println!(
        "CROSSMINT_API_URL={} CROSSMINT_SERVER_API_KEY={FAKE_API_KEY}",
        fake.api_url
    );
    fake.serve_forever().await;
    Ok(())
}
