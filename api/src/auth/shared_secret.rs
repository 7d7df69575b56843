//! HS256 with the shared `AUTH_JWT_SECRET`: tokens the product's own
//! backend mints (and `ledgerhook-token`, for trying the API).

use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::json;

/// HS256 wants a key at least as long as its output (RFC 7518 3.2).
pub const MIN_SECRET_BYTES: usize = 32;

/// The HS256 key; its text never reaches a log (Debug is redacted).
#[derive(Clone)]
pub struct JwtSecret {
    key: Vec<u8>,
    decoding: Arc<DecodingKey>,
}

impl std::fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtSecret(<redacted>)")
    }
}

impl JwtSecret {
    pub fn new(secret: &str) -> Option<Self> {
        if secret.len() < MIN_SECRET_BYTES {
            return None;
        }
        Some(Self {
            key: secret.as_bytes().to_vec(),
            decoding: Arc::new(DecodingKey::from_secret(secret.as_bytes()).ok()?),
        })
    }

    pub(super) fn decoding_key(&self) -> Arc<DecodingKey> {
        Arc::clone(&self.decoding)
    }

    /// A signed token for `sub`, valid until `exp` (unix seconds); for the
    /// `ledgerhook-token` tool and tests.
    pub fn sign(&self, sub: &str, exp: i64) -> String {
        self.sign_claims(&json!({ "sub": sub, "exp": exp }))
    }

    /// A token carrying exactly `claims` (tests use it to send what a
    /// careless or hostile signer might).
    pub fn sign_claims(&self, claims: &serde_json::Value) -> String {
        let key = EncodingKey::from_secret(&self.key).expect("a key of 32 bytes or more");
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key)
            .expect("HS256 signs with any key")
    }
}
