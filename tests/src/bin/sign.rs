//! Prints a curl command that sends a correctly signed test delivery.
//!
//! ```text
//! ledgerhook-sign [--provider crossmint|stripe] [--url URL] [--id MSG_ID]
//!                 [--timestamp SECS] [--key whsk_...] FILE
//! ledgerhook-sign --public-key-of whsk_...
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
use clap::Parser;
use ledgerhook_providers::stripe::signature::StripeSecret;
use ledgerhook_providers::svix::{SecretKey, SigningSecret};

const USAGE: &str = "see ledgerhook-sign --help";

/// Prints a curl command that sends a correctly signed test delivery.
///
/// Crossmint (the default): signs FILE's exact bytes with the first whsec_
/// secret in CROSSMINT_WEBHOOK_SECRET (or, with --key, an Ed25519 whsk_
/// key, whose whpk_ public key the ingester must hold).
///
/// Stripe (--provider stripe): the first secret in STRIPE_WEBHOOK_SECRET, a
/// Stripe-Signature header, to /webhooks/stripe; the delivery id is the
/// event's own id in FILE, so --id and --key do not apply.
///
/// --public-key-of whsk_... prints the whpk_ public key to add to
/// CROSSMINT_WEBHOOK_SECRET instead.
///
/// Run the output, or `eval "$(ledgerhook-sign FILE)"`.
#[derive(Parser)]
#[command(name = "ledgerhook-sign", version)]
struct Cli {
    /// Who the delivery is from.
    #[arg(long, value_name = "PROVIDER", default_value = "crossmint",
          value_parser = ["crossmint", "stripe"])]
    provider: String,
    /// Where to send it (default the local ingester's /webhooks/crossmint or
    /// /webhooks/stripe).
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// The svix-id (default a fresh msg_...).
    #[arg(long = "id", value_name = "MSG_ID")]
    id: Option<String>,
    /// The signature's timestamp, in seconds since the epoch (default now).
    #[arg(long, value_name = "SECS", allow_negative_numbers = true)]
    timestamp: Option<i64>,
    /// Sign as an Ed25519 (v1a) sender with this whsk_ secret key.
    #[arg(long = "key", value_name = "whsk_...")]
    key: Option<String>,
    /// Print the whpk_ public key of this whsk_ secret key, and nothing else.
    #[arg(long, value_name = "whsk_...")]
    public_key_of: Option<String>,
    /// The delivery's body, sent byte for byte.
    #[arg(value_name = "FILE", required_unless_present = "public_key_of")]
    file: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(key) = cli.public_key_of {
        let key = SecretKey::parse(&key).context("--public-key-of takes a whsk_ key")?;
        println!("{}", key.public_key().encoded());
        return Ok(());
    }
    let provider = cli.provider;
    let url = cli.url;
    let id = cli
        .id
        .unwrap_or_else(|| format!("msg_{}", uuid::Uuid::new_v4().simple()));
    let timestamp = match cli.timestamp {
        Some(timestamp) => timestamp,
        None => SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64,
    };
    let ed25519_key = cli.key;
    let file = cli.file.context(USAGE)?;
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
