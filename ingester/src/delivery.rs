//! A webhook delivery, unverified until its signature checks out.
//!
//! Only a [`VerifiedDelivery`] can be recorded or published; the type is the
//! proof that the signature and timestamp were checked and the body is JSON.

use axum::body::Bytes;
use axum::http::HeaderMap;
use ledgerhook_shared::svix::{self, SignedHeaders, SigningSecret};
use serde::de::IgnoredAny;

use crate::rejection::Rejection;

/// Longest delivery id we accept (Svix ids are about 30 characters).
const MAX_DELIVERY_ID_LEN: usize = 200;

/// The provider name recorded with each delivery.
pub const PROVIDER: &str = "crossmint";

pub struct UnverifiedDelivery {
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Debug, Clone)]
pub struct VerifiedDelivery {
    /// The sender's message id, stable across its retries.
    pub delivery_id: String,
    pub signed_at: i64,
    /// Fingerprint of the secret that verified it.
    pub verified_by: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The Svix header names, then the Standard Webhooks ones.
const HEADER_SETS: [[&str; 3]; 2] = [
    ["svix-id", "svix-timestamp", "svix-signature"],
    ["webhook-id", "webhook-timestamp", "webhook-signature"],
];

impl UnverifiedDelivery {
    pub fn verify(
        self,
        secrets: &[SigningSecret],
        now: i64,
    ) -> Result<VerifiedDelivery, Rejection> {
        let [id, timestamp, signature] = signature_headers(&self.headers)?;
        let verification = svix::verify(
            secrets,
            SignedHeaders {
                id,
                timestamp,
                signature,
            },
            &self.body,
            now,
        )?;
        // Checked after the signature so that an unauthenticated caller
        // learns nothing about what we would accept.
        if id.trim().is_empty() || id.len() > MAX_DELIVERY_ID_LEN {
            return Err(Rejection::InvalidDeliveryId);
        }
        // UTF-8 first: serde_json skips over the strings of an `IgnoredAny`
        // without validating them, and JSON is UTF-8 by definition (RFC 8259).
        let is_json = std::str::from_utf8(&self.body)
            .is_ok_and(|text| serde_json::from_str::<IgnoredAny>(text).is_ok());
        if !is_json {
            return Err(Rejection::InvalidJson);
        }
        let delivery_id = id.to_owned();
        Ok(VerifiedDelivery {
            delivery_id,
            signed_at: verification.timestamp,
            verified_by: verification.secret_fingerprint,
            headers: self.headers,
            body: self.body,
        })
    }
}

/// The first complete set of signature headers. A header that appears twice
/// is refused: we would not know which one the sender meant.
fn signature_headers(headers: &HeaderMap) -> Result<[&str; 3], Rejection> {
    for names in HEADER_SETS {
        if names.iter().all(|name| !headers.contains_key(*name)) {
            continue;
        }
        let mut values = [""; 3];
        for (slot, name) in values.iter_mut().zip(names) {
            let mut all = headers.get_all(name).iter();
            let value = all.next().ok_or(Rejection::SignatureMissing)?;
            if all.next().is_some() {
                return Err(Rejection::AmbiguousHeaders);
            }
            *slot = value.to_str().map_err(|_| Rejection::AmbiguousHeaders)?;
        }
        return Ok(values);
    }
    Err(Rejection::SignatureMissing)
}

/// Request headers as `[[name, value], ...]` for the delivery record; values
/// that are not UTF-8 are decoded lossily (the raw body is what is signed).
pub fn headers_json(headers: &HeaderMap) -> serde_json::Value {
    headers
        .iter()
        .map(|(name, value)| {
            serde_json::json!([name.as_str(), String::from_utf8_lossy(value.as_bytes())])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const NOW: i64 = 1_700_000_000;

    fn signed(prefix: &str, id: &str, body: &'static [u8]) -> UnverifiedDelivery {
        let secret = SigningSecret::parse(SECRET).unwrap();
        let mut headers = HeaderMap::new();
        let signature = secret.sign(id, NOW, body);
        headers.insert(
            axum::http::HeaderName::from_bytes(format!("{prefix}-id").as_bytes()).unwrap(),
            HeaderValue::from_str(id).unwrap(),
        );
        headers.insert(
            axum::http::HeaderName::from_bytes(format!("{prefix}-timestamp").as_bytes()).unwrap(),
            HeaderValue::from_str(&NOW.to_string()).unwrap(),
        );
        headers.insert(
            axum::http::HeaderName::from_bytes(format!("{prefix}-signature").as_bytes()).unwrap(),
            HeaderValue::from_str(&signature).unwrap(),
        );
        UnverifiedDelivery {
            headers,
            body: Bytes::from_static(body),
        }
    }

    fn secrets() -> Vec<SigningSecret> {
        vec![SigningSecret::parse(SECRET).unwrap()]
    }

    #[test]
    fn svix_and_standard_webhooks_headers_both_verify() {
        for prefix in ["svix", "webhook"] {
            let verified = signed(prefix, "msg_1", br#"{"a":1}"#)
                .verify(&secrets(), NOW)
                .unwrap();
            assert_eq!(verified.delivery_id, "msg_1");
            assert_eq!(verified.signed_at, NOW);
        }
    }

    #[test]
    fn missing_headers_are_refused() {
        let mut delivery = signed("svix", "msg_1", b"{}");
        delivery.headers.remove("svix-signature");
        assert_eq!(
            delivery.verify(&secrets(), NOW).unwrap_err(),
            Rejection::SignatureMissing
        );
        let bare = UnverifiedDelivery {
            headers: HeaderMap::new(),
            body: Bytes::from_static(b"{}"),
        };
        assert_eq!(
            bare.verify(&secrets(), NOW).unwrap_err(),
            Rejection::SignatureMissing
        );
    }

    #[test]
    fn repeated_header_is_ambiguous() {
        let mut delivery = signed("svix", "msg_1", b"{}");
        delivery
            .headers
            .append("svix-id", HeaderValue::from_static("msg_2"));
        assert_eq!(
            delivery.verify(&secrets(), NOW).unwrap_err(),
            Rejection::AmbiguousHeaders
        );
    }

    #[test]
    fn verified_body_that_is_not_json_is_refused() {
        let delivery = signed("svix", "msg_1", b"\xff\xfe not json");
        assert_eq!(
            delivery.verify(&secrets(), NOW).unwrap_err(),
            Rejection::InvalidJson
        );
    }

    #[test]
    fn verified_json_with_invalid_utf8_in_a_string_is_refused() {
        let delivery = signed("svix", "msg_1", b"{\"orderId\":\"o-\xff\xfe\"}");
        assert_eq!(
            delivery.verify(&secrets(), NOW).unwrap_err(),
            Rejection::InvalidJson
        );
    }

    #[test]
    fn headers_are_kept_as_pairs() {
        let delivery = signed("svix", "msg_1", b"{}");
        let json = headers_json(&delivery.headers);
        assert_eq!(json[0][0], "svix-id");
        assert_eq!(json[0][1], "msg_1");
    }
}
