//! Every error the API answers with: `{error, code, details?}`, a status,
//! and nothing internal (a database or Crossmint failure is logged here and
//! answered with its code only).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
            retry_after_secs: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn unauthorized(reason: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", reason)
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_REQUEST", message)
    }

    /// A text the database cannot hold: refused, never a 500 that a client
    /// would retry forever.
    pub fn nul_in_field(field: &str) -> Self {
        Self::invalid_request(format!("`{field}` contains a NUL character"))
            .with_details(json!({ "field": field }))
    }

    pub fn request_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "REQUEST_TIMEOUT",
            "the request body did not arrive in time",
        )
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("the request body is larger than {limit} bytes"),
        )
    }

    pub fn invalid_package(package_id: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "INVALID_PACKAGE",
            "no such package; see GET /api/payments/packages",
        )
        .with_details(json!({ "packageId": package_id }))
    }

    pub fn order_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "ORDER_NOT_FOUND", "no such order")
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route")
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "this route does not take that method",
        )
    }

    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMITED",
            "too many requests; retry later",
        )
        .with_details(json!({ "retryAfterSeconds": retry_after_secs }));
        error.retry_after_secs = Some(retry_after_secs);
        error
    }

    pub fn insufficient_credits(available: i64, requested: i64) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "INSUFFICIENT_CREDITS",
            "not enough credits; nothing was spent",
        )
        .with_details(json!({ "available": available, "requested": requested }))
    }

    pub fn idempotency_key_reused(first_amount: i64) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "IDEMPOTENCY_KEY_REUSED",
            "this idempotency key was used for a different amount; nothing was spent",
        )
        .with_details(json!({ "firstAmount": first_amount }))
    }

    /// Logs the whole chain of causes: reqwest's own text ("error sending
    /// request") does not say why, its sources do (say, "invalid peer
    /// certificate: UnknownIssuer"). None of them carries the API key, which
    /// only ever travels in a request header.
    pub fn crossmint(cause: &(dyn std::error::Error + 'static)) -> Self {
        tracing::warn!(reason = %Chain(cause), "Crossmint call failed");
        Self::new(
            StatusCode::BAD_GATEWAY,
            "CROSSMINT_ERROR",
            "the payment provider could not create the order; nothing was charged, try again",
        )
    }

    /// A spend the database could not complete; nothing was spent.
    pub fn credits_update_failed(cause: sqlx::Error) -> Self {
        tracing::error!(error = %cause, "spending credits failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "CREDITS_UPDATE_FAILED",
            "the credits could not be updated; nothing was spent, retry with the same idempotencyKey",
        )
    }

    /// A failure of ours; the cause goes to the log, never to the caller.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "something went wrong on our side; try again",
        )
    }
}

/// An error and its sources, `: `-separated, as anyhow's `{:#}` prints them.
struct Chain<'a>(&'a (dyn std::error::Error + 'static));

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

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        Self::internal(&error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.message, "code": self.code });
        if let Some(details) = self.details {
            body["details"] = details;
        }
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::REQUEST_TIMEOUT {
            // The rest of the body may still be on the wire.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let Some(secs) = self.retry_after_secs {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_str(&secs.to_string()).expect("digits are a header value"),
            );
        }
        response
    }
}
