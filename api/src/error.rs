//! Every error the API answers with: `{error, code, details?}`, a status,
//! and nothing internal. Each variant's text is what the caller reads; a
//! failure of ours carries its cause as the error's source, and that whole
//! chain goes to the log (never to the caller) when the answer is made.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::crossmint::CrossmintError;
use crate::stripe::StripeError;

/// When to ask again after AUTH_KEYS_UNAVAILABLE: a few seconds, within
/// which the next fetch of the keys may be tried.
const AUTH_KEYS_RETRY_AFTER_SECS: &str = "5";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The sign-in provider's keys could not be fetched and none are
    /// cached: a token of theirs cannot be checked now. Ours to fix, so a
    /// 503 the frontend retries, not a 401 that signs the user out.
    #[error("the sign-in provider's keys are unavailable; retry later")]
    AuthKeysUnavailable,
    /// `field` names the offending field when the message alone would not.
    #[error("{message}")]
    InvalidRequest {
        message: String,
        field: Option<String>,
    },
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("no such package; see GET /api/payments/packages")]
    InvalidPackage { package_id: String },
    /// `provider` is neither `crossmint` nor `stripe`.
    #[error("no such payment provider; use \"crossmint\" or \"stripe\"")]
    InvalidProvider { provider: String },
    /// A provider this deployment does not offer (Stripe without
    /// `STRIPE_SECRET_KEY`). A 4xx, not a 503: it is a lasting property of
    /// this deployment, not an outage, so a retry would only fail again,
    /// and it must not count toward the server-error rate that pages.
    #[error("this payment provider is not available; nothing was created")]
    ProviderUnavailable { provider: &'static str },
    #[error("no such order")]
    OrderNotFound,
    #[error("no such plan; see GET /api/payments/plans")]
    InvalidPlan { plan_id: String },
    /// The user has no subscription whose portal could be opened.
    #[error("no subscription to manage")]
    SubscriptionNotFound,
    /// The `Idempotency-Key` was first used to order another package, or
    /// the same package through another provider (`first_provider`, when
    /// known).
    #[error(
        "this Idempotency-Key was used for an order of another package or provider; nothing was created"
    )]
    DuplicateOrder {
        first_package_id: String,
        first_provider: Option<String>,
    },
    /// The order was not paid within the payment timeout and has expired.
    /// A buyer who did pay (the webhook can arrive after the timeout) still
    /// gets the credits on this order, so the answer says so and does not
    /// invite paying again: `retryable` is false (asking again or a new
    /// order is the buyer's choice, not an automatic retry) and
    /// `details.paidLate` tells the frontend what a late payment does.
    #[error(
        "the order was not paid in time and has expired; if you already paid, the credits will still be added to this order, so check again before starting a new order"
    )]
    PaymentTimeout {
        order_id: String,
        expired_at: Option<DateTime<Utc>>,
    },
    #[error("no such route")]
    NotFound,
    #[error("this route does not take that method")]
    MethodNotAllowed,
    #[error("too many requests; retry later")]
    RateLimited { retry_after_secs: u64 },
    #[error("too many orders waiting for payment; pay or let one expire first")]
    TooManyPendingOrders { open: i64, retry_after_secs: u64 },
    #[error("not enough credits; nothing was spent")]
    InsufficientCredits { available: i64, requested: i64 },
    #[error("this idempotency key was used for a different amount; nothing was spent")]
    IdempotencyKeyReused { first_amount: i64 },
    /// None of the causes carries the API key, which only ever travels in
    /// a request header marked sensitive.
    #[error("the payment provider could not create the order; nothing was charged, try again")]
    Crossmint(#[source] CrossmintError),
    /// As for Crossmint; the secret key only travels in a sensitive header.
    #[error("the payment provider could not create the order; nothing was charged, try again")]
    Stripe(#[source] StripeError),
    /// A spend the database could not complete; nothing was spent.
    #[error(
        "the credits could not be updated; nothing was spent, retry with the same idempotencyKey"
    )]
    CreditsUpdateFailed(#[source] sqlx::Error),
    #[error("something went wrong on our side; try again")]
    Database(#[from] sqlx::Error),
    #[error("something went wrong on our side; try again")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::InvalidRequest {
            message: message.into(),
            field: None,
        }
    }

    /// A text the database cannot hold: refused, never a 500 that a client
    /// would retry forever.
    pub fn nul_in_field(field: &str) -> Self {
        Self::InvalidRequest {
            message: format!("`{field}` contains a NUL character"),
            field: Some(field.to_owned()),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::AuthKeysUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::InvalidRequest { .. }
            | Self::InvalidPackage { .. }
            | Self::InvalidPlan { .. }
            | Self::InvalidProvider { .. } => StatusCode::BAD_REQUEST,
            Self::ProviderUnavailable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::OrderNotFound | Self::SubscriptionNotFound | Self::NotFound => {
                StatusCode::NOT_FOUND
            }
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::RateLimited { .. } | Self::TooManyPendingOrders { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            // PAYMENT_TIMEOUT is 409 too: the request is fine, the order's
            // state conflicts with it. Not 408 (that is about this request's
            // own transfer, and clients resend on it) nor 410 (a late payment
            // can still complete the order).
            Self::InsufficientCredits { .. }
            | Self::IdempotencyKeyReused { .. }
            | Self::DuplicateOrder { .. }
            | Self::PaymentTimeout { .. } => StatusCode::CONFLICT,
            Self::Crossmint(_) | Self::Stripe(_) => StatusCode::BAD_GATEWAY,
            Self::CreditsUpdateFailed(_) | Self::Database(_) | Self::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The machine-readable code clients branch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized(_) => "UNAUTHORIZED",
            Self::AuthKeysUnavailable => "AUTH_KEYS_UNAVAILABLE",
            Self::InvalidRequest { .. } => "INVALID_REQUEST",
            Self::RequestTimeout => "REQUEST_TIMEOUT",
            Self::PayloadTooLarge { .. } => "PAYLOAD_TOO_LARGE",
            Self::InvalidPackage { .. } => "INVALID_PACKAGE",
            Self::InvalidProvider { .. } => "INVALID_PROVIDER",
            Self::ProviderUnavailable { .. } => "PROVIDER_UNAVAILABLE",
            Self::OrderNotFound => "ORDER_NOT_FOUND",
            Self::InvalidPlan { .. } => "INVALID_PLAN",
            Self::SubscriptionNotFound => "SUBSCRIPTION_NOT_FOUND",
            Self::DuplicateOrder { .. } => "DUPLICATE_ORDER",
            Self::PaymentTimeout { .. } => "PAYMENT_TIMEOUT",
            Self::NotFound => "NOT_FOUND",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::TooManyPendingOrders { .. } => "TOO_MANY_PENDING_ORDERS",
            Self::InsufficientCredits { .. } => "INSUFFICIENT_CREDITS",
            Self::IdempotencyKeyReused { .. } => "IDEMPOTENCY_KEY_REUSED",
            Self::Crossmint(_) => "CROSSMINT_ERROR",
            Self::Stripe(_) => "STRIPE_ERROR",
            Self::CreditsUpdateFailed(_) => "CREDITS_UPDATE_FAILED",
            Self::Database(_) | Self::Internal(_) => "INTERNAL_ERROR",
        }
    }

    fn details(&self) -> Option<Value> {
        match self {
            Self::InvalidRequest {
                field: Some(field), ..
            } => Some(json!({ "field": field })),
            Self::InvalidPackage { package_id } => Some(json!({ "packageId": package_id })),
            Self::InvalidPlan { plan_id } => Some(json!({ "planId": plan_id })),
            Self::InvalidProvider { provider } => Some(json!({ "provider": provider })),
            Self::ProviderUnavailable { provider } => Some(json!({ "provider": provider })),
            Self::RateLimited { retry_after_secs } => {
                Some(json!({ "retryAfterSeconds": retry_after_secs }))
            }
            Self::TooManyPendingOrders {
                open,
                retry_after_secs,
            } => Some(json!({ "openOrders": open, "retryAfterSeconds": retry_after_secs })),
            Self::InsufficientCredits {
                available,
                requested,
            } => Some(json!({ "available": available, "requested": requested })),
            Self::IdempotencyKeyReused { first_amount } => {
                Some(json!({ "firstAmount": first_amount }))
            }
            Self::DuplicateOrder {
                first_package_id,
                first_provider: None,
            } => Some(json!({ "firstPackageId": first_package_id })),
            Self::DuplicateOrder {
                first_package_id,
                first_provider: Some(provider),
            } => Some(json!({ "firstPackageId": first_package_id, "firstProvider": provider })),
            Self::PaymentTimeout {
                order_id,
                expired_at,
            } => Some(json!({
                "orderId": order_id,
                "status": "expired",
                "expiredAt": expired_at,
                "retryable": false,
                "paidLate": {
                    "creditsStillAdded": true,
                    "hint": "a payment made for this order still completes it and adds the credits; confirm then answers 200. Ask the buyer whether they paid before offering a new order.",
                },
            })),
            _ => None,
        }
    }

    /// Failures of ours and of our peers go to the log with their causes:
    /// reqwest's own text ("error sending request") does not say why, its
    /// sources do (say, "invalid peer certificate: UnknownIssuer").
    fn log(&self) {
        // Only failures carry a cause; the caller's own mistakes are not logged.
        let Some(cause) = std::error::Error::source(self) else {
            return;
        };
        let causes = Chain(cause);
        match self {
            Self::Crossmint(_) => tracing::warn!(reason = %causes, "Crossmint call failed"),
            Self::Stripe(_) => tracing::warn!(reason = %causes, "Stripe call failed"),
            Self::CreditsUpdateFailed(_) => {
                tracing::error!(error = %causes, "spending credits failed");
            }
            _ => tracing::error!(error = %causes, "internal error"),
        }
    }
}

/// An error and its sources, `: `-separated, as anyhow's `{:#}` prints them.
pub(crate) struct Chain<'a>(pub(crate) &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
        let status = self.status();
        let mut body = json!({ "error": self.to_string(), "code": self.code() });
        if let Some(details) = self.details() {
            body["details"] = details;
        }
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::REQUEST_TIMEOUT {
            // The rest of the body may still be on the wire.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if matches!(self, Self::AuthKeysUnavailable) {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(AUTH_KEYS_RETRY_AFTER_SECS),
            );
        }
        if let Self::RateLimited { retry_after_secs }
        | Self::TooManyPendingOrders {
            retry_after_secs, ..
        } = self
        {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_str(&retry_after_secs.to_string())
                    .expect("digits are a header value"),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_error_answers_without_its_cause() {
        let error = ApiError::Internal(anyhow::anyhow!("table payment_orders is on fire"));
        assert_eq!(error.code(), "INTERNAL_ERROR");
        assert!(!error.to_string().contains("on fire"));
        let chain = Chain(std::error::Error::source(&error).expect("has a cause")).to_string();
        assert!(chain.contains("on fire"), "{chain}");
    }
}
