//! The Svix / Standard Webhooks signature scheme, both directions.
//!
//! Crossmint sends its webhooks through Svix. The signed content is
//! `{id}.{timestamp}.{raw body}`. The signature header holds one or more
//! space-separated entries: `v1,<base64>` is HMAC-SHA256 keyed with the
//! base64 part of a `whsec_` secret ([`secret`]); `v1a,<base64>` is Ed25519,
//! verified with a `whpk_` public key ([`public_key`]). The ingester verifies;
//! the signing tool and the load generator sign with the same code so that
//! the two can never drift apart.
//!
//! What a forged request can cost us is bounded before any cryptography: the
//! header is refused beyond [`MAX_SIGNATURE_HEADER_BYTES`] or
//! [`MAX_SIGNATURE_ENTRIES`], the MAC over the body is computed once per live
//! secret (not once per entry), and Ed25519 entries are only tried when a
//! public key is configured.

pub mod public_key;
pub mod secret;

pub use public_key::{PublicKey, SecretKey};
pub use secret::SigningSecret;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::Mac as _;

use public_key::{ASYMMETRIC_VERSION, SIGNATURE_LEN};
use secret::{SYMMETRIC_VERSION, TAG_LEN};

/// How far a delivery's timestamp may be from our clock, either way.
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 300;
/// Longest signature header read. Svix sends one entry per live key (two
/// during a rotation, each under 100 bytes); this leaves room for several.
pub const MAX_SIGNATURE_HEADER_BYTES: usize = 2048;
/// Most entries read from one signature header, for the same reason.
pub const MAX_SIGNATURE_ENTRIES: usize = 8;

#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("a webhook key must start with `whsec_` (secret) or `whpk_` (public key)")]
    MissingPrefix,
    #[error("a webhook key's key part is not valid base64")]
    NotBase64,
    #[error("a webhook key's key part is empty")]
    Empty,
    #[error("a webhook key has the wrong length for its kind")]
    WrongLength,
}

/// Every key a delivery may be verified with: several during a rotation,
/// symmetric and asymmetric side by side while a sender switches schemes.
#[derive(Debug, Clone, Default)]
pub struct VerificationKeys {
    pub secrets: Vec<SigningSecret>,
    pub public_keys: Vec<PublicKey>,
}

impl VerificationKeys {
    /// Adds one configured key, `whsec_...` or `whpk_...`.
    pub fn add(&mut self, text: &str) -> Result<(), KeyError> {
        if text.trim().starts_with("whpk_") {
            self.public_keys.push(PublicKey::parse(text)?);
        } else {
            self.secrets.push(SigningSecret::parse(text)?);
        }
        Ok(())
    }
}

impl From<Vec<SigningSecret>> for VerificationKeys {
    fn from(secrets: Vec<SigningSecret>) -> Self {
        Self {
            secrets,
            public_keys: Vec::new(),
        }
    }
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
    #[error("the signature header is longer or has more entries than any sender needs")]
    HeaderTooLarge,
    #[error("the webhook timestamp is not a number of seconds")]
    MalformedTimestamp,
    #[error("the webhook timestamp is too old")]
    TimestampTooOld,
    #[error("the webhook timestamp is in the future")]
    TimestampInFuture,
    #[error("the signature header holds no v1 or v1a signature")]
    NoUsableSignature,
    #[error("no signature matches")]
    Mismatch,
}

/// A successful verification: the signed timestamp and which key matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub timestamp: i64,
    pub key_fingerprint: String,
}

/// The decoded entries of a signature header, by scheme. Entries of other
/// versions, and entries that cannot be a signature of their scheme (not
/// base64, wrong length), are skipped.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SignatureEntries {
    pub symmetric: Vec<Vec<u8>>,
    pub asymmetric: Vec<Vec<u8>>,
}

/// Splits a signature header, refusing one beyond the bounds before
/// decoding anything.
pub fn parse_entries(header: &str) -> Result<SignatureEntries, VerifyError> {
    if header.len() > MAX_SIGNATURE_HEADER_BYTES {
        return Err(VerifyError::HeaderTooLarge);
    }
    let mut entries = SignatureEntries::default();
    for (index, entry) in header.split_whitespace().enumerate() {
        if index == MAX_SIGNATURE_ENTRIES {
            return Err(VerifyError::HeaderTooLarge);
        }
        let Some((version, encoded)) = entry.split_once(',') else {
            continue;
        };
        let (list, length) = match version {
            SYMMETRIC_VERSION => (&mut entries.symmetric, TAG_LEN),
            ASYMMETRIC_VERSION => (&mut entries.asymmetric, SIGNATURE_LEN),
            _ => continue,
        };
        if let Ok(bytes) = STANDARD.decode(encoded)
            && bytes.len() == length
        {
            list.push(bytes);
        }
    }
    Ok(entries)
}

/// `{id}.{timestamp}.{body}`, the bytes both schemes sign.
pub(crate) fn signed_content(id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let timestamp = timestamp.to_string();
    let mut content = Vec::with_capacity(id.len() + timestamp.len() + body.len() + 2);
    content.extend_from_slice(id.as_bytes());
    content.push(b'.');
    content.extend_from_slice(timestamp.as_bytes());
    content.push(b'.');
    content.extend_from_slice(body);
    content
}

/// A delivery whose headers passed every check that needs no body: bounded
/// signature header, timestamp within tolerance, at least one usable entry.
/// Refusing on these first means a stale or malformed request costs us no
/// body read and no cryptography.
#[derive(Debug)]
pub struct SignedRequest<'a> {
    id: &'a str,
    timestamp: i64,
    entries: SignatureEntries,
}

pub fn check_headers<'a>(
    headers: SignedHeaders<'a>,
    now: i64,
) -> Result<SignedRequest<'a>, VerifyError> {
    let entries = parse_entries(headers.signature)?;
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
    if entries.symmetric.is_empty() && entries.asymmetric.is_empty() {
        return Err(VerifyError::NoUsableSignature);
    }
    Ok(SignedRequest {
        id: headers.id,
        timestamp,
        entries,
    })
}

impl<'a> SignedRequest<'a> {
    /// Starts verifying a body that is read in pieces: one MAC per live
    /// secret (only if a `v1` entry was sent), fed as the body arrives.
    pub fn verifier<'k>(&'k self, keys: &'k VerificationKeys) -> BodyVerifier<'k> {
        let macs = if self.entries.symmetric.is_empty() {
            Vec::new()
        } else {
            keys.secrets
                .iter()
                .map(|secret| {
                    (
                        secret.mac(self.id, self.timestamp, b""),
                        secret.fingerprint(),
                    )
                })
                .collect()
        };
        BodyVerifier {
            request: self,
            keys,
            macs,
        }
    }
}

/// Verification in progress over a body read in pieces.
pub struct BodyVerifier<'k> {
    request: &'k SignedRequest<'k>,
    keys: &'k VerificationKeys,
    macs: Vec<(hmac::Hmac<sha2::Sha256>, &'k str)>,
}

impl BodyVerifier<'_> {
    pub fn update(&mut self, piece: &[u8]) {
        for (mac, _) in &mut self.macs {
            mac.update(piece);
        }
    }

    /// Whether any entry matches, given every piece of the body.
    ///
    /// `whole_body` is the body itself when it was kept: Ed25519 needs the
    /// whole message at once, so `v1a` entries can only be checked then.
    /// Cost, whatever the header holds: the MACs already fed, plus at most
    /// [`MAX_SIGNATURE_ENTRIES`] Ed25519 checks per public key.
    pub fn finish(self, whole_body: Option<&[u8]>) -> Result<Verification, VerifyError> {
        let request = self.request;
        let matched = |fingerprint: &str| {
            Ok(Verification {
                timestamp: request.timestamp,
                key_fingerprint: fingerprint.to_owned(),
            })
        };
        for (mac, fingerprint) in self.macs {
            // hmac's verify_slice compares in constant time.
            if request
                .entries
                .symmetric
                .iter()
                .any(|tag| mac.clone().verify_slice(tag).is_ok())
            {
                return matched(fingerprint);
            }
        }
        if let Some(body) = whole_body
            && !request.entries.asymmetric.is_empty()
            && !self.keys.public_keys.is_empty()
        {
            let content = signed_content(request.id, request.timestamp, body);
            for key in &self.keys.public_keys {
                if request
                    .entries
                    .asymmetric
                    .iter()
                    .any(|signature| key.verifies(&content, signature))
                {
                    return matched(key.fingerprint());
                }
            }
        }
        Err(VerifyError::Mismatch)
    }
}

/// Verifies a delivery held in memory against every live key. `now` is
/// passed in so tests can use fixed vectors.
pub fn verify(
    keys: &VerificationKeys,
    headers: SignedHeaders<'_>,
    body: &[u8],
    now: i64,
) -> Result<Verification, VerifyError> {
    let request = check_headers(headers, now)?;
    let mut verifier = request.verifier(keys);
    verifier.update(body);
    verifier.finish(Some(body))
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

    fn keys(secrets: &[SigningSecret]) -> VerificationKeys {
        secrets.to_vec().into()
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
        let verified = verify(&keys(&[secret()]), headers(SIGNATURE), BODY, TIMESTAMP).unwrap();
        assert_eq!(verified.timestamp, TIMESTAMP);
        assert_eq!(verified.key_fingerprint, secret().fingerprint());
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
            KeyError::MissingPrefix
        );
        assert_eq!(
            SigningSecret::parse("whsec_not*base64").unwrap_err(),
            KeyError::NotBase64
        );
        assert_eq!(SigningSecret::parse("whsec_").unwrap_err(), KeyError::Empty);
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
        assert!(verify(&keys(&[secret()]), headers(&header), BODY, TIMESTAMP).is_ok());
    }

    #[test]
    fn any_live_secret_may_match_during_rotation() {
        let old = SigningSecret::parse("whsec_b2xkLXNlY3JldC1mb3ItdGVzdHM=").unwrap();
        let verified =
            verify(&keys(&[old, secret()]), headers(SIGNATURE), BODY, TIMESTAMP).unwrap();
        assert_eq!(verified.key_fingerprint, secret().fingerprint());
    }

    #[test]
    fn tampered_body_does_not_verify() {
        let result = verify(
            &keys(&[secret()]),
            headers(SIGNATURE),
            br#"{"test": 2432232315}"#,
            TIMESTAMP,
        );
        assert_eq!(result, Err(VerifyError::Mismatch));
    }

    #[test]
    fn wrong_secret_does_not_verify() {
        let other = SigningSecret::parse("whsec_b2xkLXNlY3JldC1mb3ItdGVzdHM=").unwrap();
        let result = verify(&keys(&[other]), headers(SIGNATURE), BODY, TIMESTAMP);
        assert_eq!(result, Err(VerifyError::Mismatch));
    }

    #[test]
    fn header_without_v1_entries_is_unusable() {
        for header in ["", "   ", "v2,abc", "v1a,abc", "nonsense", "v1,***"] {
            let result = verify(&keys(&[secret()]), headers(header), BODY, TIMESTAMP);
            assert_eq!(result, Err(VerifyError::NoUsableSignature), "{header:?}");
        }
    }

    #[test]
    fn timestamps_outside_five_minutes_are_refused_both_ways() {
        let at = |now| verify(&keys(&[secret()]), headers(SIGNATURE), BODY, now);
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
            verify(&keys(&[secret()]), h, BODY, TIMESTAMP),
            Err(VerifyError::MalformedTimestamp)
        );
    }

    #[test]
    fn a_header_beyond_the_bounds_is_refused_before_any_check() {
        let many = [SIGNATURE; MAX_SIGNATURE_ENTRIES + 1].join(" ");
        assert_eq!(
            verify(&keys(&[secret()]), headers(&many), BODY, TIMESTAMP),
            Err(VerifyError::HeaderTooLarge)
        );
        let exactly = [SIGNATURE; MAX_SIGNATURE_ENTRIES].join(" ");
        assert!(verify(&keys(&[secret()]), headers(&exactly), BODY, TIMESTAMP).is_ok());
        let long = format!("{SIGNATURE}{}", " ".repeat(MAX_SIGNATURE_HEADER_BYTES));
        assert_eq!(
            verify(&keys(&[secret()]), headers(&long), BODY, TIMESTAMP),
            Err(VerifyError::HeaderTooLarge)
        );
    }

    #[test]
    fn entries_of_the_wrong_length_are_skipped_not_compared() {
        let short = "v1,AAAA v1a,AAAA";
        assert_eq!(
            parse_entries(short).unwrap(),
            SignatureEntries::default(),
            "neither entry can be a signature of its scheme"
        );
    }

    // RFC 8032, section 7.1, test 1: seed and public key.
    const RFC_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const RFC_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    fn ed25519_key() -> SecretKey {
        SecretKey::from_seed(&hex(RFC_SEED).try_into().unwrap())
    }

    #[test]
    fn ed25519_keys_parse_in_both_layouts_and_match_rfc_8032() {
        let public = format!("whpk_{}", STANDARD.encode(hex(RFC_PUBLIC)));
        assert_eq!(ed25519_key().public_key().encoded(), public);
        assert_eq!(PublicKey::parse(&public).unwrap().encoded(), public);
        let seed_only = format!("whsk_{}", STANDARD.encode(hex(RFC_SEED)));
        let libsodium = format!(
            "whsk_{}",
            STANDARD.encode([hex(RFC_SEED), hex(RFC_PUBLIC)].concat())
        );
        for text in [seed_only, libsodium] {
            assert_eq!(
                SecretKey::parse(&text).unwrap().public_key().encoded(),
                public
            );
        }
        assert_eq!(
            PublicKey::parse("whpk_dGVzdA==").unwrap_err(),
            KeyError::WrongLength
        );
    }

    #[test]
    fn v1a_ed25519_signatures_verify_against_a_public_key() {
        let signing = ed25519_key();
        let signature = signing.sign(ID, TIMESTAMP, BODY);
        assert!(signature.starts_with("v1a,"), "{signature}");
        let mut keys = keys(&[secret()]);
        keys.public_keys.push(signing.public_key());
        let verified = verify(&keys, headers(&signature), BODY, TIMESTAMP).unwrap();
        assert_eq!(verified.key_fingerprint, signing.public_key().fingerprint());
        assert_eq!(
            verify(&keys, headers(&signature), b"{}", TIMESTAMP),
            Err(VerifyError::Mismatch),
            "the body is signed"
        );
    }

    #[test]
    fn v1a_without_a_configured_public_key_is_a_mismatch_not_malformed() {
        let signature = ed25519_key().sign(ID, TIMESTAMP, BODY);
        assert_eq!(
            verify(&keys(&[secret()]), headers(&signature), BODY, TIMESTAMP),
            Err(VerifyError::Mismatch)
        );
        let other = SecretKey::from_seed(&[7; 32]).public_key();
        let keys = VerificationKeys {
            secrets: Vec::new(),
            public_keys: vec![other],
        };
        assert_eq!(
            verify(&keys, headers(&signature), BODY, TIMESTAMP),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn symmetric_and_asymmetric_entries_side_by_side_during_a_switch() {
        let signing = ed25519_key();
        let header = format!("{} {SIGNATURE}", signing.sign(ID, TIMESTAMP, BODY));
        let only_public = VerificationKeys {
            secrets: Vec::new(),
            public_keys: vec![signing.public_key()],
        };
        assert!(verify(&only_public, headers(&header), BODY, TIMESTAMP).is_ok());
        assert!(verify(&keys(&[secret()]), headers(&header), BODY, TIMESTAMP).is_ok());
    }

    #[test]
    fn a_body_fed_in_pieces_verifies_like_a_whole_one() {
        let request = check_headers(headers(SIGNATURE), TIMESTAMP).unwrap();
        let keys = keys(&[secret()]);
        let mut verifier = request.verifier(&keys);
        for piece in BODY.chunks(3) {
            verifier.update(piece);
        }
        assert!(verifier.finish(None).is_ok(), "v1 needs no kept body");

        let signing = ed25519_key();
        let signature = signing.sign(ID, TIMESTAMP, BODY);
        let request = check_headers(headers(&signature), TIMESTAMP).unwrap();
        let keys = VerificationKeys {
            secrets: Vec::new(),
            public_keys: vec![signing.public_key()],
        };
        let mut verifier = request.verifier(&keys);
        verifier.update(BODY);
        assert_eq!(
            verifier.finish(None),
            Err(VerifyError::Mismatch),
            "v1a cannot be checked without the whole body"
        );
    }

    #[test]
    fn configured_keys_are_sorted_by_kind() {
        let mut keys = VerificationKeys::default();
        keys.add(SECRET).unwrap();
        keys.add(&ed25519_key().public_key().encoded()).unwrap();
        assert_eq!((keys.secrets.len(), keys.public_keys.len()), (1, 1));
        assert_eq!(keys.add("sk_live_nope"), Err(KeyError::MissingPrefix));
    }

    proptest::proptest! {
        #[test]
        fn header_parser_never_panics(header in ".{0,300}") {
            let _ = parse_entries(&header);
        }

        #[test]
        fn whatever_we_sign_we_verify(id in "[a-zA-Z0-9_]{1,40}", body in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let signature = secret().sign(&id, TIMESTAMP, &body);
            let h = SignedHeaders { id: &id, timestamp: "1614265330", signature: &signature };
            proptest::prop_assert!(verify(&keys(&[secret()]), h, &body, TIMESTAMP).is_ok());
        }
    }
}
