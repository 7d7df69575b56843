//! Stripe's deliveries: one `Stripe-Signature` header; the delivery id is
//! the event's own `id` (`evt_...`), which Stripe keeps across its retries.

use std::borrow::Cow;

use axum::body::Body;
use axum::http::HeaderMap;
use ledgerhook_domain::Provider;
use ledgerhook_providers::stripe::signature::{self, StripeSecret};

use super::{
    Checked, Refused, UnverifiedDelivery, VerifiedDelivery, check_delivery_id, check_json,
    read_body, single_header,
};
use crate::rejection::Rejection;

const SIGNATURE_HEADER: &str = "stripe-signature";

impl UnverifiedDelivery {
    /// Checks the header first (bounds, timestamp, a usable `v1`), then
    /// reads the body through the signature check, then the body's form,
    /// and only then the event id inside it.
    pub async fn verify_stripe(
        self,
        secrets: &[StripeSecret],
        max_body_bytes: usize,
        now: i64,
    ) -> Result<VerifiedDelivery, Refused> {
        let Self { headers, body } = self;
        match checked(&headers, body, secrets, max_body_bytes, now).await {
            Ok(Checked {
                delivery_id,
                signed_at,
                verified_by,
                body,
            }) => Ok(VerifiedDelivery {
                provider: Provider::Stripe,
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
    secrets: &[StripeSecret],
    max_body_bytes: usize,
    now: i64,
) -> Result<Checked, Rejection> {
    let request = signature::check_header(single_header(headers, SIGNATURE_HEADER)?, now)?;
    let verifier = request.verifier(secrets);
    let (body, verifier) = read_body(headers, body, max_body_bytes, verifier, |verifier| {
        verifier.finish().is_ok()
    })
    .await?;
    let verification = verifier.finish()?;
    check_json(&body)?;
    let delivery_id = event_id(&body)?;
    Ok(Checked {
        delivery_id,
        signed_at: verification.timestamp,
        verified_by: verification.key_fingerprint,
        body,
    })
}

/// The event's `id` (read from valid JSON, without building its tree): a
/// string, not blank, not absurdly long. Anything else (no `id`, a number,
/// two of them, a body that is not an object) gives us nothing to tell a
/// resend from a new event by.
fn event_id(body: &[u8]) -> Result<String, Rejection> {
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        id: Cow<'a, str>,
    }
    // serde reads a struct from an array too; an event is an object.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(Rejection::InvalidDeliveryId);
    }
    let envelope: Envelope<'_> =
        serde_json::from_slice(body).map_err(|_| Rejection::InvalidDeliveryId)?;
    check_delivery_id(&envelope.id)?;
    Ok(envelope.id.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body;
    use axum::body::Body;
    use axum::http::{HeaderMap, HeaderValue};

    const LIMIT: usize = 1024;
    const SECRET: &str = "whsec_test_ledgerhook_fake_stripe_secret";
    const NOW: i64 = 1_700_000_000;

    fn secrets() -> Vec<StripeSecret> {
        vec![StripeSecret::parse(SECRET).unwrap()]
    }

    fn signed(body: impl Into<Vec<u8>>) -> UnverifiedDelivery {
        let body: Vec<u8> = body.into();
        let mut headers = HeaderMap::new();
        headers.insert(
            SIGNATURE_HEADER,
            HeaderValue::from_str(&signature::sign(SECRET, NOW, &body)).unwrap(),
        );
        UnverifiedDelivery {
            headers,
            body: Body::from(body),
        }
    }

    async fn refusal(delivery: UnverifiedDelivery) -> Rejection {
        delivery
            .verify_stripe(&secrets(), LIMIT, NOW)
            .await
            .unwrap_err()
            .rejection
    }

    #[tokio::test]
    async fn a_signed_event_is_verified_under_its_event_id() {
        let verified = signed(br#"{"id":"evt_1","type":"invoice.paid"}"#.to_vec())
            .verify_stripe(&secrets(), LIMIT, NOW)
            .await
            .unwrap();
        assert_eq!(verified.provider, Provider::Stripe);
        assert_eq!(verified.delivery_id, "evt_1");
        assert_eq!(verified.signed_at, NOW);
        assert_eq!(verified.verified_by, secrets()[0].fingerprint());
    }

    #[tokio::test]
    async fn a_missing_or_repeated_signature_header_is_refused() {
        let mut delivery = signed(br#"{"id":"evt_1"}"#.to_vec());
        delivery.headers.remove(SIGNATURE_HEADER);
        assert_eq!(refusal(delivery).await, Rejection::SignatureMissing);
        let mut delivery = signed(br#"{"id":"evt_1"}"#.to_vec());
        delivery
            .headers
            .append(SIGNATURE_HEADER, HeaderValue::from_static("t=1,v1=00"));
        assert_eq!(refusal(delivery).await, Rejection::AmbiguousHeaders);
    }

    #[tokio::test]
    async fn an_event_id_that_is_missing_not_text_blank_or_long_is_refused_after_the_signature() {
        let long = format!(r#"{{"id":"evt_{}"}}"#, "x".repeat(200));
        for body in [
            r#"{"type":"invoice.paid"}"#,
            r#"{"id":42}"#,
            r#"{"id":"  "}"#,
            r#"["evt_1"]"#,
            r#"{"id":"evt_1","id":"evt_2"}"#,
            r#"["evt_1"]"#,
            long.as_str(),
        ] {
            let error = refusal(signed(body)).await;
            assert_eq!(error, Rejection::InvalidDeliveryId, "{body}");
        }
        let mut forged = signed(r#"{"id":42}"#);
        forged.body = Body::from(r#"{"id":43}"#);
        assert_eq!(refusal(forged).await, Rejection::SignatureMismatch);
    }

    #[tokio::test]
    async fn a_verified_body_that_is_not_json_is_refused() {
        assert_eq!(refusal(signed("id=evt_1")).await, Rejection::InvalidJson);
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert_eq!(refusal(signed(deep)).await, Rejection::JsonTooDeep);
    }

    #[tokio::test]
    async fn an_oversized_body_is_told_apart_by_its_signature() {
        let big = format!(r#"{{"id":"evt_1","pad":"{}"}}"#, "x".repeat(LIMIT));
        assert_eq!(
            refusal(signed(big.clone())).await,
            Rejection::VerifiedPayloadTooLarge
        );
        let mut forged = signed(big.clone());
        forged.body = Body::from(format!("{big} "));
        assert_eq!(refusal(forged).await, Rejection::PayloadTooLarge);
        let huge = "1".repeat(LIMIT * body::OVERSIZE_VERIFY_FACTOR + 1);
        assert_eq!(refusal(signed(huge)).await, Rejection::PayloadTooLarge);
    }

    #[tokio::test]
    async fn a_v0_only_header_is_malformed_and_a_wrong_secret_a_mismatch() {
        let mut delivery = signed(br#"{"id":"evt_1"}"#.to_vec());
        let v0 = format!("t={NOW},v0={}", "a".repeat(64));
        delivery
            .headers
            .insert(SIGNATURE_HEADER, HeaderValue::from_str(&v0).unwrap());
        assert_eq!(refusal(delivery).await, Rejection::SignatureMalformed);

        let body = br#"{"id":"evt_1"}"#;
        let mut delivery = signed(body.to_vec());
        let other = signature::sign("whsec_some_other_fake_secret", NOW, body);
        delivery
            .headers
            .insert(SIGNATURE_HEADER, HeaderValue::from_str(&other).unwrap());
        assert_eq!(refusal(delivery).await, Rejection::SignatureMismatch);
    }
}
