//! A JSON body whose problems are answered in our error shape, not axum's
//! plain text: `INVALID_REQUEST` with what was wrong (and which field, for a
//! NUL character PostgreSQL text could not hold), `408` for a body that
//! did not arrive in time, `413` for one too large.

use axum::extract::{FromRequest, Request};
use ledgerhook_domain::json;
use ledgerhook_runtime::http::is_body_timeout;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;

/// Largest request body: the API's bodies are a few short fields.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, ApiError> {
        let is_json = request
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.trim_start().starts_with("application/json"));
        if !is_json {
            return Err(ApiError::invalid_request(
                "Expected request with `Content-Type: application/json`",
            ));
        }
        let bytes = axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES)
            .await
            .map_err(|e| {
                if is_body_timeout(&e) {
                    ApiError::RequestTimeout
                } else {
                    ApiError::PayloadTooLarge {
                        limit: MAX_BODY_BYTES,
                    }
                }
            })?;
        let value = json::parse(&bytes).map_err(|e| ApiError::invalid_request(e.to_string()))?;
        if let Some(field) = field_with_nul(&value, "") {
            return Err(ApiError::nul_in_field(&field));
        }
        serde_json::from_value(value).map(Self).map_err(|e| {
            ApiError::invalid_request(format!("Failed to deserialize the JSON body: {e}"))
        })
    }
}

/// The path (`a.b[2]`) of the first string, or key, holding U+0000.
fn field_with_nul(value: &Value, path: &str) -> Option<String> {
    match value {
        Value::String(text) => text.contains('\0').then(|| path.to_owned()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, item)| field_with_nul(item, &format!("{path}[{index}]"))),
        Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            let inner = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if key.contains('\0') {
                return Some(inner);
            }
            field_with_nul(item, &inner)
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_field_holding_a_nul_is_named() {
        let body = json!({"orderId": "ok", "meta": {"tags": ["a", "b\u{0}"]}});
        assert_eq!(field_with_nul(&body, "").as_deref(), Some("meta.tags[1]"));
        assert_eq!(
            field_with_nul(&json!({"idempotencyKey": "k\u{0}"}), "").as_deref(),
            Some("idempotencyKey")
        );
        assert_eq!(field_with_nul(&json!({"a": "fine", "n": 1}), ""), None);
    }
}
