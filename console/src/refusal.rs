//! A refused request: its status, a machine-readable code, a message a
//! person can act on, and a counted metric. Rendered as a page (the code
//! shown beside the message) for a browser, the same for htmx.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::metrics;
use crate::pages::layout;

#[derive(Debug)]
pub struct Refusal {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_input(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", what)
    }

    /// A failure of ours (the database, the broker): logged with its cause,
    /// shown without it (an error's text may name hosts or queries).
    pub fn internal(error: &anyhow::Error) -> Self {
        tracing::error!(error = format!("{error:#}"), "console request failed");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "the database or the broker did not answer in time; try again, and see the console's log if it persists",
        )
    }
}

impl From<sqlx::Error> for Refusal {
    fn from(error: sqlx::Error) -> Self {
        // PostgreSQL's query_canceled: the statement timeout cut a search.
        if let sqlx::Error::Database(db) = &error
            && db.code().as_deref() == Some("57014")
        {
            return Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "SEARCH_TOO_COSTLY",
                "this search took longer than the console allows (CONSOLE_STATEMENT_TIMEOUT_MS); narrow it with a time range or an exact id",
            );
        }
        Self::internal(&error.into())
    }
}

impl From<anyhow::Error> for Refusal {
    fn from(error: anyhow::Error) -> Self {
        Self::internal(&error)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        metrics::refused(self.code);
        (
            self.status,
            layout::refusal_page(self.status, self.code, &self.message),
        )
            .into_response()
    }
}
