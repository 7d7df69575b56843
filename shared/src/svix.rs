//! The Svix / Standard Webhooks signature scheme, both directions.
//!
//! Crossmint sends its webhooks through Svix. The signed content is
//! `{id}.{timestamp}.{raw body}`, the key is the base64 part of a `whsec_`
//! secret, the MAC is HMAC-SHA256 and the `svix-signature` header holds one or
//! more space-separated `v1,<base64>` entries. The ingester verifies; the
//! signing tool and the load generator sign with the same code so that the
//! two can never drift apart.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// How far a delivery's timestamp may be from our clock, either way.
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 300;

/// The only signature version the scheme defines; entries of other versions
/// (a future `v2`, or `v1a` asymmetric signatures) are skipped, not rejected.
const SIGNATURE_VERSION: &str = "v1";

/// A webhook signing secret (`whsec_...`). Its `Debug` never shows the key.
#[derive(Clone)]
pub struct SigningSecret {
    key: Vec<u8>,
    fingerprint: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("a webhook secret must start with `whsec_`")]
    MissingPrefix,
    #[error("a webhook secret's key part is not valid base64")]
    NotBase64,
    #[error("a webhook secret's key is empty")]
    Empty,
}

impl SigningSecret {
    /// Parses `whsec_<base64>`; padding on the base64 part is optional.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text
            .trim()
            .strip_prefix("whsec_")
            .ok_or(SecretError::MissingPrefix)?;
        let key = STANDARD
            .decode(encoded)
            .or_else(|_| STANDARD_NO_PAD.decode(encoded.trim_end_matches('=')))
            .map_err(|_| SecretError::NotBase64)?;
        if key.is_empty() {
            return Err(SecretError::Empty);
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

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
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
        format!("{SIGNATURE_VERSION},{}", STANDARD.encode(tag))
    }

    /// Whether `signature` (raw bytes of one decoded entry) is ours, compared
    /// in constant time by the hmac crate.
    fn verifies(&self, id: &str, timestamp: i64, body: &[u8], signature: &[u8]) -> bool {
        self.mac(id, timestamp, body)
            .verify_slice(signature)
            .is_ok()
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningSecret({}, [redacted])", self.fingerprint)
    }
}

fn fingerprint(key: &[u8]) -> String {
    let digest = Sha256::digest(key);
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// The three signature headers of one delivery, as received.
#[derive(Debug, Clone, Copy)]
pub struct SignedHeaders<'a> {
    pub id: &'a str,
    pub timestamp: &'a str,
    pub signature: &'a str,
}

/// Why a delivery's signature was not accepted. Each maps to its own status
/// code and metric label in the ingester.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("the webhook timestamp is not a number of seconds")]
    MalformedTimestamp,
    #[error("the webhook timestamp is too old")]
    TimestampTooOld,
    #[error("the webhook timestamp is in the future")]
    TimestampInFuture,
    #[error("the signature header holds no v1 signature")]
    NoUsableSignature,
    #[error("no signature matches")]
    Mismatch,
}

/// A successful verification: the signed timestamp and which secret matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub timestamp: i64,
    pub secret_fingerprint: String,
}

/// Verifies a delivery against every live secret (several during rotation).
///
/// `now` is passed in so tests can use fixed vectors.
pub fn verify(
    secrets: &[SigningSecret],
    headers: SignedHeaders<'_>,
    body: &[u8],
    now: i64,
) -> Result<Verification, VerifyError> {
    let timestamp: i64 = headers
        .timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::MalformedTimestamp)?;
    if timestamp < now - TIMESTAMP_TOLERANCE_SECS {
        return Err(VerifyError::TimestampTooOld);
    }
    if timestamp > now + TIMESTAMP_TOLERANCE_SECS {
        return Err(VerifyError::TimestampInFuture);
    }

    let candidates: Vec<Vec<u8>> = v1_signatures(headers.signature).collect();
    if candidates.is_empty() {
        return Err(VerifyError::NoUsableSignature);
    }
    for secret in secrets {
        for candidate in &candidates {
            if secret.verifies(headers.id, timestamp, body, candidate) {
                return Ok(Verification {
                    timestamp,
                    secret_fingerprint: secret.fingerprint.clone(),
                });
            }
        }
    }
    Err(VerifyError::Mismatch)
}

/// The decoded `v1` entries of a signature header; entries of other versions
/// and entries that are not base64 are skipped.
pub fn v1_signatures(header: &str) -> impl Iterator<Item = Vec<u8>> + '_ {
    header.split_whitespace().filter_map(|entry| {
        let (version, encoded) = entry.split_once(',')?;
        if version != SIGNATURE_VERSION {
            return None;
        }
        STANDARD.decode(encoded).ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Svix's published test vector (docs: "Verifying webhooks manually").
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn secret() -> SigningSecret {
        SigningSecret::parse(SECRET).unwrap()
    }

    fn headers(signature: &str) -> SignedHeaders<'_> {
        SignedHeaders {
            id: ID,
            timestamp: "1614265330",
            signature,
        }
    }

    #[test]
    fn signing_reproduces_svix_published_vector() {
        assert_eq!(secret().sign(ID, TIMESTAMP, BODY), SIGNATURE);
    }

    #[test]
    fn svix_published_vector_verifies() {
        let verified = verify(&[secret()], headers(SIGNATURE), BODY, TIMESTAMP).unwrap();
        assert_eq!(verified.timestamp, TIMESTAMP);
        assert_eq!(verified.secret_fingerprint, secret().fingerprint());
    }

    #[test]
    fn secret_without_base64_padding_is_the_same_key() {
        let padded = SigningSecret::parse("whsec_dGVzdA==").unwrap();
        let unpadded = SigningSecret::parse("whsec_dGVzdA").unwrap();
        assert_eq!(padded.key, unpadded.key);
    }

    #[test]
    fn secret_must_have_prefix_and_base64_key() {
        assert_eq!(
            SigningSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err(),
            SecretError::MissingPrefix
        );
        assert_eq!(
            SigningSecret::parse("whsec_not*base64").unwrap_err(),
            SecretError::NotBase64
        );
        assert_eq!(
            SigningSecret::parse("whsec_").unwrap_err(),
            SecretError::Empty
        );
    }

    #[test]
    fn secret_debug_never_shows_the_key() {
        let shown = format!("{:?}", secret());
        assert!(!shown.contains("MfKQ9r8"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn one_matching_entry_among_several_is_enough() {
        let header =
            format!("v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= v2,whatever {SIGNATURE}");
        assert!(verify(&[secret()], headers(&header), BODY, TIMESTAMP).is_ok());
    }

    #[test]
    fn any_live_secret_may_match_during_rotation() {
        let old = SigningSecret::parse("whsec_b2xkLXNlY3JldC1mb3ItdGVzdHM=").unwrap();
        let verified = verify(&[old, secret()], headers(SIGNATURE), BODY, TIMESTAMP).unwrap();
        assert_eq!(verified.secret_fingerprint, secret().fingerprint());
    }

    #[test]
    fn tampered_body_does_not_verify() {
        let result = verify(
            &[secret()],
            headers(SIGNATURE),
            br#"{"test": 2432232315}"#,
            TIMESTAMP,
        );
        assert_eq!(result, Err(VerifyError::Mismatch));
    }

    #[test]
    fn wrong_secret_does_not_verify() {
        let other = SigningSecret::parse("whsec_b2xkLXNlY3JldC1mb3ItdGVzdHM=").unwrap();
        let result = verify(&[other], headers(SIGNATURE), BODY, TIMESTAMP);
        assert_eq!(result, Err(VerifyError::Mismatch));
    }

    #[test]
    fn header_without_v1_entries_is_unusable() {
        for header in ["", "   ", "v2,abc", "v1a,abc", "nonsense", "v1,***"] {
            let result = verify(&[secret()], headers(header), BODY, TIMESTAMP);
            assert_eq!(result, Err(VerifyError::NoUsableSignature), "{header:?}");
        }
    }

    #[test]
    fn timestamps_outside_five_minutes_are_refused_both_ways() {
        let at = |now| verify(&[secret()], headers(SIGNATURE), BODY, now);
        assert!(at(TIMESTAMP + TIMESTAMP_TOLERANCE_SECS).is_ok());
        assert!(at(TIMESTAMP - TIMESTAMP_TOLERANCE_SECS).is_ok());
        assert_eq!(
            at(TIMESTAMP + TIMESTAMP_TOLERANCE_SECS + 1),
            Err(VerifyError::TimestampTooOld)
        );
        assert_eq!(
            at(TIMESTAMP - TIMESTAMP_TOLERANCE_SECS - 1),
            Err(VerifyError::TimestampInFuture)
        );
    }

    #[test]
    fn non_numeric_timestamp_is_malformed() {
        let mut h = headers(SIGNATURE);
        h.timestamp = "yesterday";
        assert_eq!(
            verify(&[secret()], h, BODY, TIMESTAMP),
            Err(VerifyError::MalformedTimestamp)
        );
    }

    proptest::proptest! {
        #[test]
        fn header_parser_never_panics(header in ".{0,300}") {
            let _ = v1_signatures(&header).count();
        }

        #[test]
        fn whatever_we_sign_we_verify(id in "[a-zA-Z0-9_]{1,40}", body in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let signature = secret().sign(&id, TIMESTAMP, &body);
            let h = SignedHeaders { id: &id, timestamp: "1614265330", signature: &signature };
            proptest::prop_assert!(verify(&[secret()], h, &body, TIMESTAMP).is_ok());
        }
    }
}
