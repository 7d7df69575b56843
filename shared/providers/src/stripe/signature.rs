//! The `Stripe-Signature` scheme, both directions:
//! `t=<unix seconds>,v1=<hex>[,v1=<hex>...][,v0=...]`, where each `v1` is
//! HMAC-SHA256 over `{t}.{raw body}`, keyed with the whole `whsec_...`
//! secret's UTF-8 bytes (not base64-decoded, unlike Svix), in lower-case hex.
//!
//! Signing lives here beside verification so the test tools and the fake
//! Stripe can never drift from what the ingester checks.
//!
//! What a forged request can cost us is bounded as for Svix
//! (`crate::svix`): the header is refused beyond
//! [`MAX_SIGNATURE_HEADER_BYTES`] or [`MAX_SIGNATURE_ENTRIES`] before any
//! cryptography, and the MAC over the body is computed once per live secret
//! (not once per `v1` entry), fed while the body streams in.
//!
//! Where we differ from Stripe's own libraries, on purpose:
//! - the timestamp is bounded both ways ([`TIMESTAMP_TOLERANCE_SECS`]);
//!   the SDKs only refuse old ones, but a signature dated in the future is
//!   as suspicious as a stale one (and would outlive its replay window);
//! - a `t` that is missing, repeated or not a number is malformed (the SDKs
//!   take the first one);
//! - only lower-case hex is a usable `v1`, as Stripe sends it; the SDKs
//!   compare hex strings, so an upper-case one fails there too.

use std::fmt;

use hmac::{Hmac, Mac as _};
use sha2::{Digest as _, Sha256};

/// How far a delivery's timestamp may be from our clock, either way
/// (Stripe's SDKs default to the same 300 s, in the past only).
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 300;
/// Longest header read. Stripe sends `t`, one `v1` per live secret of the
/// endpoint (two while rolling one) and sometimes a `v0`: under 250 bytes.
pub const MAX_SIGNATURE_HEADER_BYTES: usize = 2048;
/// Most comma-separated entries read from one header, for the same reason.
pub const MAX_SIGNATURE_ENTRIES: usize = 8;

/// The scheme whose entries we check; `v0` (Stripe's test-mode legacy
/// scheme) and anything unknown is ignored.
const SCHEME: &str = "v1";
/// An HMAC-SHA256 tag is 32 bytes, 64 hex digits.
const TAG_LEN: usize = 32;
const SECRET_PREFIX: &str = "whsec_";

/// The `Stripe-Signature` header value for `body` signed with `secret` at
/// `timestamp`, as Stripe sends it.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = mac(secret.as_bytes(), timestamp);
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let hex: String = tag.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("t={timestamp},{SCHEME}={hex}")
}

/// The MAC state after `{t}.`, ready for the body.
fn mac(key: &[u8], timestamp: i64) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac
}

#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("a Stripe webhook secret must start with `whsec_`")]
    MissingPrefix,
    #[error("a Stripe webhook secret has nothing after `whsec_`")]
    Empty,
}

/// A Stripe endpoint's signing secret (`whsec_...`). The key is the whole
/// string, prefix included. Its `Debug` never shows it.
#[derive(Clone)]
pub struct StripeSecret {
    key: String,
    fingerprint: String,
}

impl StripeSecret {
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let key = text.trim();
        let rest = key
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretError::MissingPrefix)?;
        if rest.is_empty() {
            return Err(SecretError::Empty);
        }
        let digest = Sha256::digest(key.as_bytes());
        let fingerprint = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self {
            key: key.to_owned(),
            fingerprint,
        })
    }

    /// A short, non-reversible name for the secret (first 8 hex digits of
    /// the SHA-256 of the secret string), recorded as `verified_by` so an
    /// operator can tell which live secret verified a delivery.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The header value Stripe would send for `body` (see [`sign`]).
    pub fn sign(&self, timestamp: i64, body: &[u8]) -> String {
        sign(&self.key, timestamp, body)
    }
}

impl fmt::Debug for StripeSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StripeSecret({}, [redacted])", self.fingerprint)
    }
}

/// Why a delivery's signature was not accepted; each maps to its own
/// status code and metric label in the ingester (the same ones as Svix's).
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("the signature header is longer or has more entries than any sender needs")]
    HeaderTooLarge,
    #[error("the signature header has no single numeric `t`")]
    MalformedTimestamp,
    #[error("the webhook timestamp is too old")]
    TimestampTooOld,
    #[error("the webhook timestamp is in the future")]
    TimestampInFuture,
    #[error("the signature header holds no usable v1 signature")]
    NoUsableSignature,
    #[error("no signature matches")]
    Mismatch,
}

/// A successful verification: the signed timestamp and which secret matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub timestamp: i64,
    pub key_fingerprint: String,
}

/// A parsed header: its one timestamp and the `v1` tags that can be a
/// signature (64 lower-case hex digits); other entries are skipped.
#[derive(Debug, PartialEq, Eq)]
pub struct SignatureHeader {
    pub timestamp: i64,
    pub tags: Vec<[u8; TAG_LEN]>,
}

/// Splits a header, refusing one beyond the bounds before decoding anything.
pub fn parse_header(header: &str) -> Result<SignatureHeader, VerifyError> {
    if header.len() > MAX_SIGNATURE_HEADER_BYTES {
        return Err(VerifyError::HeaderTooLarge);
    }
    let mut timestamp = None;
    let mut tags = Vec::new();
    for (index, entry) in header.split(',').enumerate() {
        if index == MAX_SIGNATURE_ENTRIES {
            return Err(VerifyError::HeaderTooLarge);
        }
        let Some((key, value)) = entry.trim().split_once('=') else {
            continue;
        };
        match key {
            "t" => {
                let parsed = value
                    .parse::<i64>()
                    .map_err(|_| VerifyError::MalformedTimestamp)?;
                if timestamp.replace(parsed).is_some() {
                    return Err(VerifyError::MalformedTimestamp);
                }
            }
            SCHEME => tags.extend(decode_lower_hex(value)),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(VerifyError::MalformedTimestamp)?;
    Ok(SignatureHeader { timestamp, tags })
}

/// Exactly 64 lower-case hex digits, else `None`.
fn decode_lower_hex(text: &str) -> Option<[u8; TAG_LEN]> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let bytes = text.as_bytes();
    if bytes.len() != TAG_LEN * 2 {
        return None;
    }
    let mut tag = [0u8; TAG_LEN];
    for (slot, pair) in tag.iter_mut().zip(bytes.chunks_exact(2)) {
        *slot = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(tag)
}

/// A delivery whose header passed every check that needs no body: bounded,
/// one numeric timestamp within tolerance, at least one usable `v1`.
/// Refusing on these first means a stale or malformed request costs us no
/// body read and no cryptography.
#[derive(Debug)]
pub struct SignedRequest {
    header: SignatureHeader,
}

pub fn check_header(header: &str, now: i64) -> Result<SignedRequest, VerifyError> {
    let header = parse_header(header)?;
    if header.timestamp < now - TIMESTAMP_TOLERANCE_SECS {
        return Err(VerifyError::TimestampTooOld);
    }
    if header.timestamp > now + TIMESTAMP_TOLERANCE_SECS {
        return Err(VerifyError::TimestampInFuture);
    }
    if header.tags.is_empty() {
        return Err(VerifyError::NoUsableSignature);
    }
    Ok(SignedRequest { header })
}

impl SignedRequest {
    /// Starts verifying a body that is read in pieces: one MAC per live
    /// secret, fed as the body arrives.
    pub fn verifier<'k>(&'k self, secrets: &'k [StripeSecret]) -> BodyVerifier<'k> {
        let timestamp = self.header.timestamp;
        BodyVerifier {
            request: self,
            macs: secrets
                .iter()
                .map(|secret| (mac(secret.key.as_bytes(), timestamp), secret.fingerprint()))
                .collect(),
        }
    }
}

/// Verification in progress over a body read in pieces.
pub struct BodyVerifier<'k> {
    request: &'k SignedRequest,
    macs: Vec<(Hmac<Sha256>, &'k str)>,
}

impl BodyVerifier<'_> {
    pub fn update(&mut self, piece: &[u8]) {
        for (mac, _) in &mut self.macs {
            mac.update(piece);
        }
    }

    /// Whether any `v1` matches any secret, given every piece of the body.
    /// Cost: the MACs already fed, then one constant-time comparison per
    /// secret and tag (at most [`MAX_SIGNATURE_ENTRIES`] tags).
    pub fn finish(self) -> Result<Verification, VerifyError> {
        let header = &self.request.header;
        for (mac, fingerprint) in self.macs {
            // hmac's verify_slice compares in constant time.
            if header
                .tags
                .iter()
                .any(|tag| mac.clone().verify_slice(tag).is_ok())
            {
                return Ok(Verification {
                    timestamp: header.timestamp,
                    key_fingerprint: fingerprint.to_owned(),
                });
            }
        }
        Err(VerifyError::Mismatch)
    }
}

/// Verifies a delivery held in memory against every live secret. `now` is
/// passed in so tests can use fixed vectors.
pub fn verify(
    secrets: &[StripeSecret],
    header: &str,
    body: &[u8],
    now: i64,
) -> Result<Verification, VerifyError> {
    let request = check_header(header, now)?;
    let mut verifier = request.verifier(secrets);
    verifier.update(body);
    verifier.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    // A fixed vector computed once with Stripe's own Python library
    // (PyPI `stripe` 16.1.0), not with this code:
    //   stripe.WebhookSignature._compute_signature(f"{TIMESTAMP}.{BODY}", SECRET)
    // tests/it/stripe_ingest.rs checks against the same library live.
    const SECRET: &str = "whsec_test_ledgerhook_fake_stripe_secret";
    const TIMESTAMP: i64 = 1_700_000_000;
    const BODY: &[u8] = br#"{"id":"evt_fixed_vector","object":"event","type":"invoice.paid"}"#;
    const TAG: &str = "60904ee7356e16cded0829f6224873de23129ee472cf8b3621e2db4aa4d53be0";

    fn secret() -> StripeSecret {
        StripeSecret::parse(SECRET).unwrap()
    }

    fn other() -> StripeSecret {
        StripeSecret::parse("whsec_another_fake_secret_for_rotation").unwrap()
    }

    fn header() -> String {
        format!("t={TIMESTAMP},v1={TAG}")
    }

    #[test]
    fn signing_reproduces_stripes_own_library() {
        assert_eq!(sign(SECRET, TIMESTAMP, BODY), header());
        assert_eq!(secret().sign(TIMESTAMP, BODY), header());
    }

    #[test]
    fn stripes_signature_verifies() {
        let verified = verify(&[secret()], &header(), BODY, TIMESTAMP).unwrap();
        assert_eq!(verified.timestamp, TIMESTAMP);
        assert_eq!(verified.key_fingerprint, secret().fingerprint());
    }

    #[test]
    fn the_key_is_the_whole_secret_string_not_base64_decoded() {
        // Svix would decode the part after `whsec_`; Stripe does not. Two
        // secrets that decode alike must still be different keys.
        let padded = StripeSecret::parse("whsec_dGVzdA==").unwrap();
        let unpadded = StripeSecret::parse("whsec_dGVzdA").unwrap();
        assert_ne!(padded.sign(TIMESTAMP, BODY), unpadded.sign(TIMESTAMP, BODY));
        assert_ne!(padded.fingerprint(), unpadded.fingerprint());
    }

    #[test]
    fn secret_must_have_prefix_and_something_after_it() {
        assert_eq!(
            StripeSecret::parse("sk_live_nope").unwrap_err(),
            SecretError::MissingPrefix
        );
        assert_eq!(
            StripeSecret::parse("whsec_").unwrap_err(),
            SecretError::Empty
        );
        assert_eq!(
            StripeSecret::parse("").unwrap_err(),
            SecretError::MissingPrefix
        );
    }

    #[test]
    fn secret_debug_never_shows_the_key() {
        let shown = format!("{:?}", secret());
        assert!(!shown.contains("ledgerhook_fake"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn one_matching_v1_among_several_entries_is_enough() {
        let header = format!(
            "t={TIMESTAMP},v1={},v0=whatever,v9=x,no-equals-sign,v1={TAG}",
            "0".repeat(64),
        );
        assert!(verify(&[secret()], &header, BODY, TIMESTAMP).is_ok());
    }

    #[test]
    fn any_live_secret_may_match_during_rotation() {
        let verified = verify(&[other(), secret()], &header(), BODY, TIMESTAMP).unwrap();
        assert_eq!(verified.key_fingerprint, secret().fingerprint());
        let header = format!("{},v1={TAG}", other().sign(TIMESTAMP, BODY));
        let verified = verify(&[secret(), other()], &header, BODY, TIMESTAMP).unwrap();
        assert_eq!(verified.key_fingerprint, secret().fingerprint());
    }

    #[test]
    fn tampered_body_does_not_verify() {
        let result = verify(&[secret()], &header(), b"{\"id\":\"evt_other\"}", TIMESTAMP);
        assert_eq!(result, Err(VerifyError::Mismatch));
    }

    #[test]
    fn wrong_secret_does_not_verify() {
        let result = verify(&[other()], &header(), BODY, TIMESTAMP);
        assert_eq!(result, Err(VerifyError::Mismatch));
    }

    #[test]
    fn a_different_timestamp_does_not_verify() {
        let moved = format!("t={},v1={TAG}", TIMESTAMP + 1);
        assert_eq!(
            verify(&[secret()], &moved, BODY, TIMESTAMP),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn a_header_without_a_usable_v1_is_unusable() {
        for header in [
            format!("t={TIMESTAMP}"),
            format!("t={TIMESTAMP},v0={TAG}"),
            format!("t={TIMESTAMP},v1={}", TAG.to_ascii_uppercase()),
            format!("t={TIMESTAMP},v1={}", &TAG[..62]),
            format!("t={TIMESTAMP},v1=zz{}", &TAG[2..]),
        ] {
            let result = verify(&[secret()], &header, BODY, TIMESTAMP);
            assert_eq!(result, Err(VerifyError::NoUsableSignature), "{header:?}");
        }
    }

    #[test]
    fn a_missing_repeated_or_non_numeric_t_is_malformed() {
        for header in [
            format!("v1={TAG}"),
            format!("t={TIMESTAMP},t={TIMESTAMP},v1={TAG}"),
            format!("t=yesterday,v1={TAG}"),
            format!("t=,v1={TAG}"),
            String::new(),
        ] {
            let result = verify(&[secret()], &header, BODY, TIMESTAMP);
            assert_eq!(result, Err(VerifyError::MalformedTimestamp), "{header:?}");
        }
    }

    #[test]
    fn timestamps_outside_five_minutes_are_refused_both_ways() {
        let at = |now| verify(&[secret()], &header(), BODY, now);
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
    fn a_header_beyond_the_bounds_is_refused_before_any_check() {
        let entry = format!("v1={TAG}");
        let entries = |count: usize| {
            format!(
                "t={TIMESTAMP},{}",
                vec![entry.as_str(); count - 1].join(",")
            )
        };
        assert_eq!(
            verify(
                &[secret()],
                &entries(MAX_SIGNATURE_ENTRIES + 1),
                BODY,
                TIMESTAMP
            ),
            Err(VerifyError::HeaderTooLarge)
        );
        assert!(
            verify(
                &[secret()],
                &entries(MAX_SIGNATURE_ENTRIES),
                BODY,
                TIMESTAMP
            )
            .is_ok()
        );
        let long = format!("{}{}", header(), " ".repeat(MAX_SIGNATURE_HEADER_BYTES));
        assert_eq!(
            verify(&[secret()], &long, BODY, TIMESTAMP),
            Err(VerifyError::HeaderTooLarge)
        );
    }

    #[test]
    fn a_body_fed_in_pieces_verifies_like_a_whole_one() {
        let request = check_header(&header(), TIMESTAMP).unwrap();
        let secrets = [secret()];
        let mut verifier = request.verifier(&secrets);
        for piece in BODY.chunks(3) {
            verifier.update(piece);
        }
        assert!(verifier.finish().is_ok());
    }

    #[test]
    fn no_secret_configured_is_a_mismatch() {
        assert_eq!(
            verify(&[], &header(), BODY, TIMESTAMP),
            Err(VerifyError::Mismatch)
        );
    }

    proptest::proptest! {
        #[test]
        fn header_parser_never_panics(header in ".{0,300}") {
            let _ = parse_header(&header);
        }

        #[test]
        fn whatever_we_sign_we_verify(body in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let header = secret().sign(TIMESTAMP, &body);
            proptest::prop_assert!(verify(&[secret()], &header, &body, TIMESTAMP).is_ok());
        }
    }
}
