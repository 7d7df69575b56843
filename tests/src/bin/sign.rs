//! Prints a curl command that sends a correctly signed test delivery.
//!
//! ```text
//! ledgerhook-sign [--url URL] [--id MSG_ID] [--timestamp SECS] FILE
//! ```
//! The secret is the first of `CROSSMINT_WEBHOOK_SECRET` (space-separated).
//! Run the output, or `eval "$(ledgerhook-sign FILE)"`.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use ledgerhook_shared::svix::SigningSecret;

const USAGE: &str = "usage: ledgerhook-sign [--url URL] [--id MSG_ID] [--timestamp SECS] FILE
  signs FILE's exact bytes with the first secret in CROSSMINT_WEBHOOK_SECRET
  and prints a curl command that delivers it";

fn main() -> anyhow::Result<()> {
    let mut url = "http://127.0.0.1:8080/webhooks/crossmint".to_owned();
    let mut id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let mut timestamp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
    let mut file = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--url" => url = value()?,
            "--id" => id = value()?,
            "--timestamp" => timestamp = value()?.parse().context("--timestamp takes seconds")?,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ if arg.starts_with('-') => bail!("unknown option {arg}\n{USAGE}"),
            _ => file = Some(arg),
        }
    }
    let file = file.context(USAGE)?;
    let body = std::fs::read(&file).with_context(|| format!("reading {file}"))?;
    let secret_text = std::env::var("CROSSMINT_WEBHOOK_SECRET")
        .context("set CROSSMINT_WEBHOOK_SECRET to the whsec_ secret the ingester uses")?;
    let first = secret_text
        .split_whitespace()
        .next()
        .context("CROSSMINT_WEBHOOK_SECRET is empty")?;
    let secret = SigningSecret::parse(first).context("CROSSMINT_WEBHOOK_SECRET")?;
    let signature = secret.sign(&id, timestamp, &body);
    println!(
        "curl -sS -X POST '{url}' -H 'content-type: application/json' -H 'svix-id: {id}' \
         -H 'svix-timestamp: {timestamp}' -H 'svix-signature: {signature}' --data-binary @'{file}'"
    );
    Ok(())
}
