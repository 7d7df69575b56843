//! Crossmint's deliveries, through Svix: the `svix-*` (or Standard
//! Webhooks' `webhook-*`) headers, the id among them.

use axum::body::Body;
use axum::http::HeaderMap;
use ledgerhook_domain::Provider;
use ledgerhook_providers::svix::{self, SignedHeaders, VerificationKeys};

use super::{
    Checked, Refused, UnverifiedDelivery, VerifiedDelivery, check_delivery_id, check_json,
    read_body, single_header,
};
use crate::rejection::Rejection;

/// The Svix header names, then the Standard Webhooks ones.
const HEADER_SETS: [[&str; 3]; 2] = [
    ["svix-id", "svix-timestamp", "svix-signature"],
    ["webhook-id", "webhook-timestamp", "webhook-signature"],
];

impl UnverifiedDelivery {
    /// Checks what needs no body first (headers, bounds, timestamp), then
    /// reads the body through the signature check, then the body's form.
    /// A refusal keeps the request's headers, for the rejection log.
    pub async fn verify_crossmint(
        self,
        keys: &VerificationKeys,
        max_body_bytes: usize,
        now: i64,
    ) -> Result<VerifiedDelivery, Refused> {
        let Self { headers, body } = self;
        match checked(&headers, body, keys, max_body_bytes, now).await {
            Ok(Checked {
                delivery_id,
                signed_at,
                verified_by,
                body,
            }) => Ok(VerifiedDelivery {
                provider: Provider::Crossmint,
                delivery_id,
                signed_at,
                verified_by,
                headers,
                body,
            }),
            Err(rejection) => Err(Refused { rejection, headers }),
        }
    }
}

async fn checked(
    headers: &HeaderMap,
    body: Body,
    keys: &VerificationKeys,
    max_body_bytes: usize,
    now: i64,
) -> Result<Checked, Rejection> {
    let [id, timestamp, signature] = signature_headers(headers)?;
    let request = svix::check_headers(
        SignedHeaders {
            id,
            timestamp,
            signature,
        },
        now,
    )?;
    let verifier = request.verifier(keys);
    let (body, verifier) = read_body(headers, body, max_body_bytes, verifier, |verifier| {
        verifier.finish(None).is_ok()
    })
    .await?;
    let verification = verifier.finish(Some(&body))?;
    check_delivery_id(id)?;
    check_json(&body)?;
    Ok(Checked {
        delivery_id: id.to_owned(),
        signed_at: verification.timestamp,
        verified_by: verification.key_fingerprint,
        body,
    })
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
            *slot = single_header(headers, name)?;
        }
        return Ok(values);
    }
    Err(Rejection::SignatureMissing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body;
    use crate::delivery::headers_json;
    use axum::body::Body;
    use axum::http::HeaderValue;
    use ledgerhook_providers::svix::SigningSecret;

    const LIMIT: usize = 1024;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const NOW: i64 = 1_700_000_000;

    fn signed(prefix: &str, id: &str, body: impl Into<Vec<u8>>) -> UnverifiedDelivery {
        let body: Vec<u8> = body.into();
        let secret = SigningSecret::parse(SECRET).unwrap();
        let mut headers = HeaderMap::new();
        let signature = secret.sign(id, NOW, &body);
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
            body: Body::from(body),
        }
    }

    fn secrets() -> VerificationKeys {
        vec![SigningSecret::parse(SECRET).unwrap()].into()
    }

    #[tokio::test]
    async fn svix_and_standard_webhooks_headers_both_verify() {
        for prefix in ["svix", "webhook"] {
            let verified = signed(prefix, "msg_1", br#"{"a":1}"#)
                .verify_crossmint(&secrets(), LIMIT, NOW)
                .await
                .unwrap();
            assert_eq!(verified.delivery_id, "msg_1");
            assert_eq!(verified.signed_at, NOW);
        }
    }

    #[tokio::test]
    async fn missing_headers_are_refused() {
        let mut delivery = signed("svix", "msg_1", b"{}");
        delivery.headers.remove("svix-signature");
        assert_eq!(
            delivery
                .verify_crossmint(&secrets(), LIMIT, NOW)
                .await
                .unwrap_err()
                .rejection,
            Rejection::SignatureMissing
        );
        let bare = UnverifiedDelivery {
            headers: HeaderMap::new(),
            body: Body::from("{}"),
        };
        assert_eq!(
            bare.verify_crossmint(&secrets(), LIMIT, NOW)
                .await
                .unwrap_err()
                .rejection,
            Rejection::SignatureMissing
        );
    }

    #[tokio::test]
    async fn repeated_header_is_ambiguous() {
        let mut delivery = signed("svix", "msg_1", b"{}");
        delivery
            .headers
            .append("svix-id", HeaderValue::from_static("msg_2"));
        assert_eq!(
            delivery
                .verify_crossmint(&secrets(), LIMIT, NOW)
                .await
                .unwrap_err()
                .rejection,
            Rejection::AmbiguousHeaders
        );
    }

    #[tokio::test]
    async fn verified_body_that_is_not_json_is_refused() {
        let delivery = signed("svix", "msg_1", &b"\xff\xfe not json"[..]);
        assert_eq!(
            delivery
                .verify_crossmint(&secrets(), LIMIT, NOW)
                .await
                .unwrap_err()
                .rejection,
            Rejection::InvalidJson
        );
    }

    #[tokio::test]
    async fn verified_json_with_invalid_utf8_in_a_string_is_refused() {
        let delivery = signed("svix", "msg_1", &b"{\"orderId\":\"o-\xff\xfe\"}"[..]);
        assert_eq!(
            delivery
                .verify_crossmint(&secrets(), LIMIT, NOW)
                .await
                .unwrap_err()
                .rejection,
            Rejection::InvalidJson
        );
    }

    #[test]
    fn headers_are_kept_as_pairs() {
        let delivery = signed("svix", "msg_1", b"{}");
        let json: serde_json::Value =
            serde_json::from_str(&headers_json(&delivery.headers)).unwrap();
        assert_eq!(json[0][0], "svix-id");
        assert_eq!(json[0][1], "msg_1");
    }

    #[tokio::test]
    async fn verified_json_nested_too_deep_is_refused_with_its_own_code() {
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        let error = signed("svix", "msg_1", deep)
            .verify_crossmint(&secrets(), LIMIT, NOW)
            .await
            .unwrap_err()
            .rejection;
        assert_eq!(error, Rejection::JsonTooDeep);
        assert!(error.aborts_retries());
    }

    #[tokio::test]
    async fn an_oversized_body_is_told_apart_by_its_signature() {
        let big = format!("[{}1]", "1,".repeat(LIMIT));
        let error = signed("svix", "msg_1", big.clone())
            .verify_crossmint(&secrets(), LIMIT, NOW)
            .await
            .unwrap_err()
            .rejection;
        assert_eq!(error, Rejection::VerifiedPayloadTooLarge);
        assert!(
            error.aborts_retries(),
            "the sender's own body: stop retrying"
        );

        let mut forged = signed("svix", "msg_1", big.clone());
        forged.body = Body::from(format!("{big} "));
        let error = forged
            .verify_crossmint(&secrets(), LIMIT, NOW)
            .await
            .unwrap_err()
            .rejection;
        assert_eq!(error, Rejection::PayloadTooLarge);
        assert!(!error.aborts_retries());

        let huge = "1".repeat(LIMIT * body::OVERSIZE_VERIFY_FACTOR + 1);
        let error = signed("svix", "msg_1", huge)
            .verify_crossmint(&secrets(), LIMIT, NOW)
            .await
            .unwrap_err()
            .rejection;
        assert_eq!(
            error,
            Rejection::PayloadTooLarge,
            "beyond the cap: not even read"
        );
    }

    #[tokio::test]
    async fn an_ed25519_delivery_verifies_with_a_configured_public_key() {
        let signing = svix::SecretKey::from_seed(&[42; 32]);
        let mut delivery = signed("webhook", "msg_1", &br#"{"a":1}"#[..]);
        delivery.headers.insert(
            "webhook-signature",
            HeaderValue::from_str(&signing.sign("msg_1", NOW, br#"{"a":1}"#)).unwrap(),
        );
        let mut keys = secrets();
        keys.public_keys.push(signing.public_key());
        let verified = delivery.verify_crossmint(&keys, LIMIT, NOW).await.unwrap();
        assert_eq!(verified.verified_by, signing.public_key().fingerprint());
    }

    #[tokio::test]
    async fn a_bad_signature_never_aborts_retries() {
        let mut delivery = signed("svix", "msg_1", &b"{}"[..]);
        delivery.headers.insert(
            "svix-signature",
            HeaderValue::from_static("v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        );
        let error = delivery
            .verify_crossmint(&secrets(), LIMIT, NOW)
            .await
            .unwrap_err()
            .rejection;
        assert_eq!(error, Rejection::SignatureMismatch);
        assert!(!error.aborts_retries());
    }
}
