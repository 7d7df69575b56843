//! Prints a curl command that sends a correctly signed test delivery.
//!
//! ```text
//! ledgerhook-sign [--provider crossmint|stripe] [--url URL] [--id MSG_ID]
//!                 [--timestamp SECS] [--key whsk_...] FILE
//! ```
//! Crossmint (the default): the secret is the first `whsec_` key of
//! `CROSSMINT_WEBHOOK_SECRET` (space-separated); `--key whsk_...` signs as
//! an Ed25519 (`v1a`) sender instead, whose `whpk_` public key the ingester
//! must hold. Stripe: the first secret of `STRIPE_WEBHOOK_SECRET`, a
//! `Stripe-Signature` header, to `/webhooks/stripe`; the delivery id is the
//! event's own `id` in FILE, so `--id` and `--key` do not apply.
//! Run the output, or `eval "$(ledgerhook-sign FILE)"`.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use ledgerhook_shared::stripe::signature::StripeSecret;
use ledgerhook_shared::svix::{SecretKey, SigningSecret};

const USAGE: &str =
    "usage: ledgerhook-sign [--url URL] [--id MSG_ID] [--timestamp SECS] [--key whsk_...] FILE
  signs FILE's exact bytes with the first whsec_ secret in CROSSMINT_WEBHOOK_SECRET
  (or, with --key, an Ed25519 whsk_ key) and prints a curl command that delivers it
       ledgerhook-sign --provider stripe [--url URL] [--timestamp SECS] FILE
  the same for Stripe: the first secret in STRIPE_WEBHOOK_SECRET, to /webhooks/stripe
       ledgerhook-sign --public-key-of whsk_...
  prints the whpk_ public key to add to CROSSMINT_WEBHOOK_SECRET";

fn main() -> anyhow::Result<()> {
    let mut provider = "crossmint".to_owned();
    let mut url = None;
    let mut id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let mut timestamp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
    let mut file = None;
    let mut ed25519_key = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--provider" => provider = value()?,
            "--url" => url = Some(value()?),
            "--id" => id = value()?,
            "--timestamp" => timestamp = value()?.parse().context("--timestamp takes seconds")?,
            "--key" => ed25519_key = Some(value()?),
            "--public-key-of" => {
                let key =
                    SecretKey::parse(&value()?).context("--public-key-of takes a whsk_ key")?;
                println!("{}", key.public_key().encoded());
                return Ok(());
            }
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
    match provider.as_str() {
        "crossmint" => {}
        "stripe" => {
            if ed25519_key.is_some() {
                bail!(
                    "--key is for Crossmint's Ed25519 signing; Stripe signs with a secret\n{USAGE}"
                );
            }
            let url = url.unwrap_or_else(|| "http://127.0.0.1:8080/webhooks/stripe".to_owned());
            let secret_text = std::env::var("STRIPE_WEBHOOK_SECRET")
                .context("set STRIPE_WEBHOOK_SECRET to the whsec_ secret the ingester uses")?;
            let first = secret_text
                .split_whitespace()
                .next()
                .context("STRIPE_WEBHOOK_SECRET is empty")?;
            let secret = StripeSecret::parse(first).context("STRIPE_WEBHOOK_SECRET entry 1")?;
            let signature = secret.sign(timestamp, &body);
            println!(
                "curl -sS -X POST '{url}' -H 'content-type: application/json' \
                 -H 'stripe-signature: {signature}' --data-binary @'{file}'"
            );
            return Ok(());
        }
        other => bail!("unknown provider {other:?}: crossmint or stripe\n{USAGE}"),
    }
    let url = url.unwrap_or_else(|| "http://127.0.0.1:8080/webhooks/crossmint".to_owned());
    let signature = match ed25519_key {
        Some(key) => SecretKey::parse(&key)
            .context("--key takes a whsk_ Ed25519 secret key")?
            .sign(&id, timestamp, &body),
        None => {
            let secret_text = std::env::var("CROSSMINT_WEBHOOK_SECRET")
                .context("set CROSSMINT_WEBHOOK_SECRET to the whsec_ secret the ingester uses")?;
            let first = secret_text
                .split_whitespace()
                .find(|key| key.starts_with("whsec_"))
                .context("CROSSMINT_WEBHOOK_SECRET holds no whsec_ secret; use --key whsk_...")?;
            SigningSecret::parse(first)
                .context("CROSSMINT_WEBHOOK_SECRET")?
                .sign(&id, timestamp, &body)
        }
    };
    println!(
        "curl -sS -X POST '{url}' -H 'content-type: application/json' -H 'svix-id: {id}' \
         -H 'svix-timestamp: {timestamp}' -H 'svix-signature: {signature}' --data-binary @'{file}'"
    );
    Ok(())
}
