//! `ledgerhook-fake-crossmint [ADDR]`: the tests' Crossmint stand-in as a
//! process, for trying the API locally and for the schemathesis run. Prints
//! the `CROSSMINT_API_URL` to use; accepts the key `FAKE_API_KEY`.

use ledgerhook_tests::fake_crossmint::{FAKE_API_KEY, FakeCrossmint};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into())
        .parse()?;
    let fake = FakeCrossmint::start_on(addr).await?;
    println!(
        "CROSSMINT_API_URL={} CROSSMINT_SERVER_API_KEY={FAKE_API_KEY}",
        fake.api_url
    );
    fake.serve_forever().await;
    Ok(())
}
