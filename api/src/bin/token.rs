//! `ledgerhook-token USER_ID [TTL_SECONDS]`: mints a bearer token for the
//! API, signed with `AUTH_JWT_SECRET` from the environment (default TTL one
//! hour). For trying the API and for tests; the real frontend's tokens come
//! from its own sign-in.

use anyhow::{Context as _, bail};
use ledgerhook_api::auth::JwtSecret;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(user_id) = args.next() else {
        bail!("usage: ledgerhook-token USER_ID [TTL_SECONDS]  (AUTH_JWT_SECRET in the environment)")
    };
    let ttl: i64 = match args.next() {
        Some(ttl) => ttl.parse().context("TTL_SECONDS is a number")?,
        None => 3600,
    };
    let secret = std::env::var("AUTH_JWT_SECRET").context("AUTH_JWT_SECRET is not set")?;
    let secret = JwtSecret::new(&secret).context("AUTH_JWT_SECRET must be at least 32 bytes")?;
    println!(
        "{}",
        secret.sign(&user_id, chrono::Utc::now().timestamp() + ttl)
    );
    Ok(())
}
