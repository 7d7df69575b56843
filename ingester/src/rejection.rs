//! Every way the webhook endpoint can refuse a delivery, mapped to HTTP in
//! one place: a status, a machine-readable code, a short message and a
//! counted metric. Internal details are logged, never sent.
//!
//! A refusal of a delivery whose signature checked out, but whose body can
//! never be accepted, carries `webhook-delivery: abort-message`, so that
//! Svix stops retrying it instead of trying for 28 hours. A signature
//! failure never does: a rotation may be in progress, and the retry may
//! carry a key we hold by then. Only the Crossmint route sends it: see
//! [`Refusal`].

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ledgerhook_domain::Provider;
use ledgerhook_providers::stripe::signature as stripe_signature;
use ledgerhook_providers::svix::VerifyError;
use serde::Serialize;

use crate::metrics;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// This ingester holds no secret for the provider whose route was
    /// called (its `*_WEBHOOK_SECRET` is unset).
    ProviderNotConfigured,
    /// No `svix-id`/`svix-timestamp`/`svix-signature` (nor `webhook-*`) headers.
    SignatureMissing,
    /// A signature header appears more than once, or a value is not text.
    AmbiguousHeaders,
    /// The signature header holds no usable `v1`/`v1a` entry, or the timestamp is not a number.
    SignatureMalformed,
    /// The signature header is longer, or has more entries, than any sender needs.
    SignatureHeaderTooLarge,
    /// No live secret produced any of the given signatures.
    SignatureMismatch,
    TimestampTooOld,
    TimestampInFuture,
    /// The delivery id is empty or absurdly long.
    InvalidDeliveryId,
    /// The body is over the limit and could not be verified.
    PayloadTooLarge,
    /// The body is over the limit, and its signature checked out.
    VerifiedPayloadTooLarge,
    /// The body did not arrive within the body timeout.
    RequestTimeout,
    /// The client stopped sending the body part way.
    BodyIncomplete,
    /// Verified, but the body is not JSON (including invalid UTF-8).
    InvalidJson,
    /// Verified JSON, nested deeper than [`ledgerhook_domain::json::MAX_NESTING_DEPTH`].
    JsonTooDeep,
    /// The delivery could not be recorded; the sender must retry.
    StorageUnavailable,
}

/// Seconds a sender should wait before retrying when we could not record.
const RETRY_AFTER_SECS: &str = "5";
/// Svix's delivery-control header, and the value that stops retries of
/// this one message (docs.svix.com/receiving/delivery-control).
pub const ABORT_HEADER: &str = "webhook-delivery";
pub const ABORT_MESSAGE: &str = "abort-message";

impl Rejection {
    /// Every rejection, so that each can be counted from zero.
    pub const ALL: [Self; 16] = [
        Self::ProviderNotConfigured,
        Self::SignatureMissing,
        Self::AmbiguousHeaders,
        Self::SignatureMalformed,
        Self::SignatureHeaderTooLarge,
        Self::SignatureMismatch,
        Self::TimestampTooOld,
        Self::TimestampInFuture,
        Self::InvalidDeliveryId,
        Self::PayloadTooLarge,
        Self::VerifiedPayloadTooLarge,
        Self::RequestTimeout,
        Self::BodyIncomplete,
        Self::InvalidJson,
        Self::JsonTooDeep,
        Self::StorageUnavailable,
    ];

    pub fn status(self) -> StatusCode {
        match self {
            Self::SignatureMissing
            | Self::SignatureMalformed
            | Self::SignatureMismatch
            | Self::TimestampTooOld
            | Self::TimestampInFuture => StatusCode::UNAUTHORIZED,
            Self::AmbiguousHeaders
            | Self::SignatureHeaderTooLarge
            | Self::InvalidDeliveryId
            | Self::BodyIncomplete
            | Self::InvalidJson
            | Self::JsonTooDeep => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge | Self::VerifiedPayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::StorageUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            // Not a 5xx: nothing is broken and nothing will recover by
            // itself, and a 5xx would page us for a sender we never set up.
            // A sender retries any non-2xx anyway; 404 tells its operator
            // "no such endpoint here" in the dashboard.
            Self::ProviderNotConfigured => StatusCode::NOT_FOUND,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::SignatureMissing => "SIGNATURE_MISSING",
            Self::AmbiguousHeaders => "AMBIGUOUS_SIGNATURE_HEADERS",
            Self::SignatureMalformed => "SIGNATURE_MALFORMED",
            Self::SignatureHeaderTooLarge => "SIGNATURE_HEADER_TOO_LARGE",
            Self::SignatureMismatch => "SIGNATURE_VERIFICATION_FAILED",
            Self::TimestampTooOld => "TIMESTAMP_TOO_OLD",
            Self::TimestampInFuture => "TIMESTAMP_IN_FUTURE",
            Self::InvalidDeliveryId => "INVALID_DELIVERY_ID",
            Self::PayloadTooLarge | Self::VerifiedPayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::RequestTimeout => "REQUEST_TIMEOUT",
            Self::BodyIncomplete => "BODY_INCOMPLETE",
            Self::InvalidJson => "INVALID_JSON",
            Self::JsonTooDeep => "JSON_TOO_DEEP",
            Self::StorageUnavailable => "STORAGE_UNAVAILABLE",
            Self::ProviderNotConfigured => "PROVIDER_NOT_CONFIGURED",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::SignatureMissing => "webhook signature headers are missing",
            Self::AmbiguousHeaders => "a webhook signature header is repeated or unreadable",
            Self::SignatureMalformed => "webhook signature headers are malformed",
            Self::SignatureHeaderTooLarge => {
                "webhook signature header is longer or has more entries than allowed"
            }
            Self::SignatureMismatch => "webhook signature verification failed",
            Self::TimestampTooOld => "webhook timestamp is older than five minutes",
            Self::TimestampInFuture => "webhook timestamp is more than five minutes ahead",
            Self::InvalidDeliveryId => "webhook id is empty, too long or holds control characters",
            Self::PayloadTooLarge | Self::VerifiedPayloadTooLarge => {
                "webhook body is larger than this endpoint accepts"
            }
            Self::RequestTimeout => "webhook body did not arrive in time",
            Self::BodyIncomplete => "webhook body ended before it was complete",
            Self::InvalidJson => "webhook body is not valid JSON",
            Self::JsonTooDeep => "webhook body nests JSON deeper than this endpoint accepts",
            Self::StorageUnavailable => "the delivery could not be recorded; retry later",
            Self::ProviderNotConfigured => {
                "this endpoint does not receive webhooks from this provider"
            }
        }
    }

    /// Signed by the sender, yet never acceptable: retrying cannot help.
    pub fn aborts_retries(self) -> bool {
        matches!(
            self,
            Self::VerifiedPayloadTooLarge
                | Self::InvalidDeliveryId
                | Self::InvalidJson
                | Self::JsonTooDeep
        )
    }

    /// Refused possibly without reading the whole body: everything decided
    /// on the headers alone, and the body's own failures. (A verified
    /// oversized body was read to its end, through the MAC.)
    pub fn leaves_body_unread(self) -> bool {
        matches!(
            self,
            Self::ProviderNotConfigured
                | Self::SignatureMissing
                | Self::AmbiguousHeaders
                | Self::SignatureMalformed
                | Self::SignatureHeaderTooLarge
                | Self::TimestampTooOld
                | Self::TimestampInFuture
                | Self::PayloadTooLarge
                | Self::RequestTimeout
                | Self::BodyIncomplete
        )
    }

    /// The metric label: the code in lower case.
    pub fn outcome(self) -> String {
        self.code().to_ascii_lowercase()
    }
}

impl From<VerifyError> for Rejection {
    fn from(error: VerifyError) -> Self {
        match error {
            VerifyError::MalformedTimestamp | VerifyError::NoUsableSignature => {
                Self::SignatureMalformed
            }
            VerifyError::HeaderTooLarge => Self::SignatureHeaderTooLarge,
            VerifyError::TimestampTooOld => Self::TimestampTooOld,
            VerifyError::TimestampInFuture => Self::TimestampInFuture,
            VerifyError::Mismatch => Self::SignatureMismatch,
        }
    }
}

impl From<stripe_signature::VerifyError> for Rejection {
    fn from(error: stripe_signature::VerifyError) -> Self {
        use stripe_signature::VerifyError as E;
        match error {
            E::MalformedTimestamp | E::NoUsableSignature => Self::SignatureMalformed,
            E::HeaderTooLarge => Self::SignatureHeaderTooLarge,
            E::TimestampTooOld => Self::TimestampTooOld,
            E::TimestampInFuture => Self::TimestampInFuture,
            E::Mismatch => Self::SignatureMismatch,
        }
    }
}

#[derive(Serialize)]
struct ErrorBody {
    error: &'static str,
    code: &'static str,
}

/// A rejection on one provider's route: the answer, and the metric counted
/// under that provider. The only way a rejection becomes a response, so
/// none goes uncounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub provider: Provider,
    pub rejection: Rejection,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let Self {
            provider,
            rejection,
        } = self;
        metrics::delivery_outcome(provider, &rejection.outcome());
        let mut response = (
            rejection.status(),
            Json(ErrorBody {
                error: rejection.message(),
                code: rejection.code(),
            }),
        )
            .into_response();
        let headers = response.headers_mut();
        if rejection == Rejection::StorageUnavailable {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECS),
            );
        }
        if rejection.leaves_body_unread() {
            // The rest of the body is still on the wire: this connection
            // cannot carry another request, and a client must not reuse it.
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        // Svix's delivery control, so only for Crossmint. Stripe has no
        // such header: it retries any non-2xx for up to three days whatever
        // we send, and sending it there would only suggest to a reader (and
        // to tests) that those retries stop.
        if rejection.aborts_retries() && provider == Provider::Crossmint {
            headers.insert(ABORT_HEADER, HeaderValue::from_static(ABORT_MESSAGE));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_holds_every_rejection_once() {
        // Exhaustive: a new variant does not compile here until it has a
        // place, and the assertion then asks for it in `ALL`.
        let place = |rejection: Rejection| match rejection {
            Rejection::ProviderNotConfigured => 0,
            Rejection::SignatureMissing => 1,
            Rejection::AmbiguousHeaders => 2,
            Rejection::SignatureMalformed => 3,
            Rejection::SignatureHeaderTooLarge => 4,
            Rejection::SignatureMismatch => 5,
            Rejection::TimestampTooOld => 6,
            Rejection::TimestampInFuture => 7,
            Rejection::InvalidDeliveryId => 8,
            Rejection::PayloadTooLarge => 9,
            Rejection::VerifiedPayloadTooLarge => 10,
            Rejection::RequestTimeout => 11,
            Rejection::BodyIncomplete => 12,
            Rejection::InvalidJson => 13,
            Rejection::JsonTooDeep => 14,
            Rejection::StorageUnavailable => 15,
        };
        let places: Vec<usize> = Rejection::ALL.into_iter().map(place).collect();
        assert_eq!(places, (0..Rejection::ALL.len()).collect::<Vec<_>>());
    }
}
