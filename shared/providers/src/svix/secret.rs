//! The symmetric half of the scheme: `whsec_` secrets and `v1` HMAC-SHA256
//! signatures.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::KeyError;

/// The signature version of HMAC-SHA256 entries.
pub(super) const SYMMETRIC_VERSION: &str = "v1";
/// An HMAC-SHA256 tag is 32 bytes; an entry of any other length cannot match.
pub(super) const TAG_LEN: usize = 32;

/// A webhook signing secret (`whsec_...`). Its `Debug` never shows the key.
#[derive(Clone)]
pub struct SigningSecret {
    pub(super) key: Vec<u8>,
    fingerprint: String,
}

impl SigningSecret {
    /// Parses `whsec_<base64>`; padding on the base64 part is optional.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let encoded = text
            .trim()
            .strip_prefix("whsec_")
            .ok_or(KeyError::MissingPrefix)?;
        let key = decode_base64(encoded)?;
        if key.is_empty() {
            return Err(KeyError::Empty);
        }
        let fingerprint = fingerprint(&key);
        Ok(Self { key, fingerprint })
    }

    /// A short, non-reversible name for the secret (first 8 hex digits of the
    /// SHA-256 of its key): recorded with each delivery so an operator can tell
    /// which of several live secrets verified it, without storing the secret.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The MAC state after absorbing the signed content. Computed once per
    /// secret and request; each candidate entry is then checked against a
    /// clone, so the cost does not grow with the number of entries sent.
    pub(super) fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC accepts a key of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `v1,<base64>` signature entry for this content.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = self.mac(id, timestamp, body).finalize().into_bytes();
        format!("{SYMMETRIC_VERSION},{}", STANDARD.encode(tag))
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningSecret({}, [redacted])", self.fingerprint)
    }
}

/// Base64 with or without padding, as providers print keys either way.
pub(super) fn decode_base64(encoded: &str) -> Result<Vec<u8>, KeyError> {
    STANDARD
        .decode(encoded)
        .or_else(|_| STANDARD_NO_PAD.decode(encoded.trim_end_matches('=')))
        .map_err(|_| KeyError::NotBase64)
}

pub(super) fn fingerprint(key: &[u8]) -> String {
    let digest = Sha256::digest(key);
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}
