//! `ledgerhook-token USER_ID [TTL_SECONDS]`: mints a bearer token for the
//! API, signed with `AUTH_JWT_SECRET` from the environment (default TTL one
//! hour). For trying the API and for tests; the real frontend's tokens come
//! from its own sign-in.

use anyhow::Context as _;
use clap::Parser;
use ledgerhook_api::auth::JwtSecret;

/// Mints a bearer token for the API, signed with AUTH_JWT_SECRET from the
/// environment (at least 32 bytes), and prints it.
///
/// For trying the API and for tests; the real frontend's tokens come from
/// its own sign-in.
#[derive(Parser)]
#[command(name = "ledgerhook-token", version)]
struct Cli {
    /// The user the token is for (its `sub`).
    #[arg(value_name = "USER_ID")]
    user_id: String,
    /// How long the token is valid, in seconds.
    #[arg(
        value_name = "TTL_SECONDS",
        default_value_t = 3600,
        allow_negative_numbers = true
    )]
    ttl: i64,
}

fn main() -> anyhow::Result<()> {
    let Cli { user_id, ttl } = Cli::parse();
    let secret = std::env::var("AUTH_JWT_SECRET").context("AUTH_JWT_SECRET is not set")?;
    let secret = JwtSecret::new(&secret).context("AUTH_JWT_SECRET must be at least 32 bytes")?;
    println!(
        "{}",
        secret.sign(&user_id, chrono::Utc::now().timestamp() + ttl)
    );
    Ok(())
}
