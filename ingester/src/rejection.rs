//! Every way the webhook endpoint can refuse a delivery, mapped to HTTP in
//! one place: a status, a machine-readable code, a short message and a
//! counted metric. Internal details are logged, never sent.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ledgerhook_shared::svix::VerifyError;
use serde::Serialize;

use crate::metrics;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// No `svix-id`/`svix-timestamp`/`svix-signature` (nor `webhook-*`) headers.
    SignatureMissing,
    /// A signature header appears more than once, or a value is not text.
    AmbiguousHeaders,
    /// The signature header holds no usable `v1` entry, or the timestamp is not a number.
    SignatureMalformed,
    /// No live secret produced any of the given signatures.
    SignatureMismatch,
    TimestampTooOld,
    TimestampInFuture,
    /// The delivery id is empty or absurdly long.
    InvalidDeliveryId,
    PayloadTooLarge,
    /// Verified, but the body is not JSON (including invalid UTF-8).
    InvalidJson,
    /// The delivery could not be recorded; the sender must retry.
    StorageUnavailable,
}

/// Seconds a sender should wait before retrying when we could not record.
const RETRY_AFTER_SECS: &str = "5";

impl Rejection {
    pub fn status(self) -> StatusCode {
        match self {
            Self::SignatureMissing
            | Self::SignatureMalformed
            | Self::SignatureMismatch
            | Self::TimestampTooOld
            | Self::TimestampInFuture => StatusCode::UNAUTHORIZED,
            Self::AmbiguousHeaders | Self::InvalidDeliveryId | Self::InvalidJson => {
                StatusCode::BAD_REQUEST
            }
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::StorageUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::SignatureMissing => "SIGNATURE_MISSING",
            Self::AmbiguousHeaders => "AMBIGUOUS_SIGNATURE_HEADERS",
            Self::SignatureMalformed => "SIGNATURE_MALFORMED",
            Self::SignatureMismatch => "SIGNATURE_VERIFICATION_FAILED",
            Self::TimestampTooOld => "TIMESTAMP_TOO_OLD",
            Self::TimestampInFuture => "TIMESTAMP_IN_FUTURE",
            Self::InvalidDeliveryId => "INVALID_DELIVERY_ID",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::InvalidJson => "INVALID_JSON",
            Self::StorageUnavailable => "STORAGE_UNAVAILABLE",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::SignatureMissing => "webhook signature headers are missing",
            Self::AmbiguousHeaders => "a webhook signature header is repeated or unreadable",
            Self::SignatureMalformed => "webhook signature headers are malformed",
            Self::SignatureMismatch => "webhook signature verification failed",
            Self::TimestampTooOld => "webhook timestamp is older than five minutes",
            Self::TimestampInFuture => "webhook timestamp is more than five minutes ahead",
            Self::InvalidDeliveryId => "webhook id is empty or too long",
            Self::PayloadTooLarge => "webhook body is larger than this endpoint accepts",
            Self::InvalidJson => "webhook body is not valid JSON",
            Self::StorageUnavailable => "the delivery could not be recorded; retry later",
        }
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
            VerifyError::TimestampTooOld => Self::TimestampTooOld,
            VerifyError::TimestampInFuture => Self::TimestampInFuture,
            VerifyError::Mismatch => Self::SignatureMismatch,
        }
    }
}

#[derive(Serialize)]
struct ErrorBody {
    error: &'static str,
    code: &'static str,
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        metrics::delivery_outcome(&self.outcome());
        let mut response = (
            self.status(),
            Json(ErrorBody {
                error: self.message(),
                code: self.code(),
            }),
        )
            .into_response();
        if self == Self::StorageUnavailable {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECS),
            );
        }
        response
    }
}
