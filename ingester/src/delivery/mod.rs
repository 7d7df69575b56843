//! A webhook delivery, unverified until its signature checks out.
//!
//! Only a [`VerifiedDelivery`] can be recorded or published; the type is the
//! proof that the signature and timestamp were checked and the body is JSON.
//! Each provider's scheme has its own module ([`crossmint`]: Svix headers;
//! [`stripe`]: `Stripe-Signature`); both read the body through
//! [`crate::body::read`] and end in the same checks of the body's form.

mod crossmint;
mod stripe;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use ledgerhook_domain::Provider;
use ledgerhook_domain::json::{self, JsonError};

use crate::body::{self, BodyError, StreamingVerifier};
use crate::rejection::Rejection;

/// Longest delivery id we accept (Svix ids are about 30 characters, Stripe
/// event ids about 30 too).
const MAX_DELIVERY_ID_LEN: usize = 200;

pub struct UnverifiedDelivery {
    pub headers: HeaderMap,
    pub body: Body,
}

/// Its fields are private: only the `verify_*` methods of
/// [`UnverifiedDelivery`] make one, so holding one proves the checks passed.
#[derive(Debug, Clone)]
pub struct VerifiedDelivery {
    provider: Provider,
    delivery_id: String,
    signed_at: i64,
    verified_by: String,
    headers: HeaderMap,
    body: Bytes,
}

impl VerifiedDelivery {
    /// Who signed it, recorded with it and carried to the worker.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The sender's message id, stable across its retries.
    pub fn delivery_id(&self) -> &str {
        &self.delivery_id
    }

    /// The signed timestamp, in seconds since the Unix epoch.
    pub fn signed_at(&self) -> i64 {
        self.signed_at
    }

    /// Fingerprint of the key that verified it.
    pub fn verified_by(&self) -> &str {
        &self.verified_by
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The exact bytes that were signed.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The id and the body, for publishing once recorded.
    pub fn into_id_and_body(self) -> (String, Bytes) {
        (self.delivery_id, self.body)
    }
}

/// A request refused before it became a delivery: why, and the headers it
/// carried (for the rejection log; the body is never kept).
#[derive(Debug)]
pub struct Refused {
    pub rejection: Rejection,
    pub headers: HeaderMap,
}

/// What a provider's checks establish of a delivery, before its headers
/// join it.
struct Checked {
    delivery_id: String,
    signed_at: i64,
    verified_by: String,
    body: Bytes,
}

/// Reads the body through `verifier`, within the limits, and hands the
/// verifier back to be finished. `signed_anyway` is asked only of a body
/// over the limit that was read to its end: did it verify? If so the
/// sender's own body is too large (retrying cannot help); if not, it may be
/// anyone's.
async fn read_body<V: StreamingVerifier>(
    headers: &HeaderMap,
    body: Body,
    max_body_bytes: usize,
    mut verifier: V,
    signed_anyway: impl FnOnce(V) -> bool,
) -> Result<(Bytes, V), Rejection> {
    match body::read(
        body,
        max_body_bytes,
        declared_length(headers),
        &mut verifier,
    )
    .await
    {
        Ok(body) => Ok((body, verifier)),
        Err(BodyError::TooLarge { complete: true }) if signed_anyway(verifier) => {
            Err(Rejection::VerifiedPayloadTooLarge)
        }
        Err(BodyError::TooLarge { .. }) => Err(Rejection::PayloadTooLarge),
        Err(BodyError::TimedOut) => Err(Rejection::RequestTimeout),
        Err(BodyError::Incomplete) => Err(Rejection::BodyIncomplete),
    }
}

/// Whether the verified body is JSON. The worker parses with the same
/// definition, so whatever is recorded here can be read there; no tree is
/// built here (the ingester keeps the bytes, not the values).
fn check_json(body: &[u8]) -> Result<(), Rejection> {
    json::validate(body).map_err(|e| match e {
        JsonError::TooDeep => Rejection::JsonTooDeep,
        JsonError::NotUtf8 | JsonError::Syntax(_) => Rejection::InvalidJson,
    })
}

/// A delivery id we will key on: not blank, not absurdly long, no control
/// characters (PostgreSQL text cannot hold NUL, and an id is printed to
/// operators' terminals). Checked only after the signature, so an
/// unauthenticated caller learns nothing about what we would accept.
fn check_delivery_id(id: &str) -> Result<(), Rejection> {
    if id.trim().is_empty() || id.len() > MAX_DELIVERY_ID_LEN || id.contains(char::is_control) {
        return Err(Rejection::InvalidDeliveryId);
    }
    Ok(())
}

/// The one value of a header that must appear exactly once; repeated or
/// not text is ambiguous: we would not know which one the sender meant.
fn single_header<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h str, Rejection> {
    let mut all = headers.get_all(name).iter();
    let value = all.next().ok_or(Rejection::SignatureMissing)?;
    if all.next().is_some() {
        return Err(Rejection::AmbiguousHeaders);
    }
    value.to_str().map_err(|_| Rejection::AmbiguousHeaders)
}

pub fn declared_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Request headers as the JSON text `[[name, value], ...]` for the delivery
/// record, written straight out (no tree); values that are not UTF-8 are
/// decoded lossily (the raw body is what is signed).
pub fn headers_json(headers: &HeaderMap) -> String {
    let mut text = Vec::with_capacity(64 * headers.len() + 2);
    text.push(b'[');
    for (index, (name, value)) in headers.iter().enumerate() {
        if index > 0 {
            text.push(b',');
        }
        text.push(b'[');
        json_string(&mut text, name.as_str());
        text.push(b',');
        json_string(&mut text, &String::from_utf8_lossy(value.as_bytes()));
        text.push(b']');
    }
    text.push(b']');
    String::from_utf8(text).expect("JSON strings of UTF-8 text are UTF-8")
}

/// `value` as a JSON string (quoted and escaped) at the end of `out`.
fn json_string(out: &mut Vec<u8>, value: &str) {
    serde_json::to_writer(&mut *out, value).expect("a string always serialises into memory");
}
