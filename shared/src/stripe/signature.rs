//! The `Stripe-Signature` scheme: `t=<unix seconds>,v1=<hex>[,v1=<hex>...]`,
//! where each `v1` is HMAC-SHA256 over `{t}.{raw body}`, keyed with the
//! whole `whsec_...` secret's UTF-8 bytes (not base64-decoded, unlike
//! Svix), in lower-case hex.
//!
//! Signing lives here beside verification so the test tools and the fake
//! Stripe can never drift from what the ingester checks.

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

/// The `Stripe-Signature` header value for `body` signed with `secret` at
/// `timestamp`, as Stripe sends it.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let hex: String = tag.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}
