//! The asymmetric half of the Standard Webhooks scheme: `v1a` Ed25519
//! signatures, verified with `whpk_` public keys. A Svix endpoint switched to
//! Ed25519 signs with a `whsk_` secret key that never leaves the sender; we
//! hold only the public key, so a leak on our side forges nothing.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};

use super::KeyError;
use super::secret::{decode_base64, fingerprint};

/// The signature version of Ed25519 entries.
pub(super) const ASYMMETRIC_VERSION: &str = "v1a";
/// An Ed25519 signature is 64 bytes; an entry of any other length cannot match.
pub(super) const SIGNATURE_LEN: usize = 64;
const PUBLIC_KEY_LEN: usize = 32;
const SEED_LEN: usize = 32;

/// An Ed25519 public key (`whpk_<base64 of 32 bytes>`).
#[derive(Clone)]
pub struct PublicKey {
    key: [u8; PUBLIC_KEY_LEN],
    fingerprint: String,
}

impl PublicKey {
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let encoded = text
            .trim()
            .strip_prefix("whpk_")
            .ok_or(KeyError::MissingPrefix)?;
        let key: [u8; PUBLIC_KEY_LEN] = decode_base64(encoded)?
            .try_into()
            .map_err(|_| KeyError::WrongLength)?;
        Ok(Self {
            fingerprint: fingerprint(&key),
            key,
        })
    }

    /// As for secrets: which key verified a delivery, without the key.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// `whpk_<base64>`, the form an operator configures.
    pub fn encoded(&self) -> String {
        format!("whpk_{}", STANDARD.encode(self.key))
    }

    pub(super) fn verifies(&self, content: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.key)
            .verify(content, signature)
            .is_ok()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.fingerprint)
    }
}

/// An Ed25519 signing key (`whsk_...`): what the sender holds. Here only for
/// the signing tool, the load generator and tests, which play the sender.
pub struct SecretKey {
    pair: Ed25519KeyPair,
}

impl SecretKey {
    /// `whsk_<base64>` of the 32-byte seed, or of seed and public key (64
    /// bytes, the libsodium layout).
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let encoded = text
            .trim()
            .strip_prefix("whsk_")
            .ok_or(KeyError::MissingPrefix)?;
        let bytes = decode_base64(encoded)?;
        let pair = match bytes.len() {
            SEED_LEN => Ed25519KeyPair::from_seed_unchecked(&bytes),
            64 => Ed25519KeyPair::from_seed_and_public_key(&bytes[..SEED_LEN], &bytes[SEED_LEN..]),
            _ => return Err(KeyError::WrongLength),
        }
        .map_err(|_| KeyError::WrongLength)?;
        Ok(Self { pair })
    }

    /// A key from a 32-byte seed (tests make one from fixed bytes).
    pub fn from_seed(seed: &[u8; SEED_LEN]) -> Self {
        Self {
            pair: Ed25519KeyPair::from_seed_unchecked(seed).expect("any 32 bytes are a seed"),
        }
    }

    pub fn public_key(&self) -> PublicKey {
        let key: [u8; PUBLIC_KEY_LEN] = self
            .pair
            .public_key()
            .as_ref()
            .try_into()
            .expect("an Ed25519 public key is 32 bytes");
        PublicKey {
            fingerprint: fingerprint(&key),
            key,
        }
    }

    /// The `v1a,<base64>` signature entry for this content.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let signature = self.pair.sign(&super::signed_content(id, timestamp, body));
        format!(
            "{ASYMMETRIC_VERSION},{}",
            STANDARD.encode(signature.as_ref())
        )
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey([redacted])")
    }
}
