//! Server to server: the product's backend spends credits for a user it
//! names. It presents an API key (`Authorization: Bearer lhk_...`, made by
//! `ledgerhook-admin api-key add`) and the user in `Ledgerhook-User`. A key
//! is good only where a route takes a [`Spender`]; every other route wants
//! the user's own token.
//!
//! What a wrong key costs us: a key-shaped one, one probe of a unique index;
//! anything else, nothing. Either is a 401 counted under `api_key`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use ledgerhook_store::api_keys;

use super::{MAX_SUB_BYTES, Refusal, TokenError, User, bearer_token};
use crate::app::AppState;
use crate::error::ApiError;

/// The header naming the user an API key spends for.
pub const USER_HEADER: &str = "ledgerhook-user";

/// Whose credits a request may spend, and on whose authority.
#[derive(Debug, Clone)]
pub struct Spender {
    pub user_id: String,
    /// The API key's name when the product's backend asked; `None` when
    /// the user's own token did.
    pub api_key: Option<String>,
}

impl FromRequestParts<AppState> for Spender {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts)?;
        if !token.starts_with(api_keys::KEY_PREFIX) {
            if parts.headers.contains_key(USER_HEADER) {
                return Err(ApiError::InvalidRequest {
                    message:
                        "Ledgerhook-User goes with an API key; a user's token names its own user"
                            .into(),
                    field: Some("Ledgerhook-User".into()),
                });
            }
            let user = User::from_request_parts(parts, state).await?;
            return Ok(Self {
                user_id: user.id,
                api_key: None,
            });
        }
        if !api_keys::well_formed(token) {
            return Err(refused());
        }
        let name = api_keys::name_for(&state.pool, &api_keys::hash(token))
            .await?
            .ok_or_else(refused)?;
        let user = named_user(parts)?;
        Ok(Self {
            user_id: user,
            api_key: Some(name),
        })
    }
}

fn refused() -> ApiError {
    ApiError::from(TokenError::Refused(Refusal::ApiKey))
}

/// The user an API key acts for: the same bounds as a token's user id.
fn named_user(parts: &Parts) -> Result<String, ApiError> {
    let invalid = |message: String| ApiError::InvalidRequest {
        message,
        field: Some("Ledgerhook-User".into()),
    };
    let value = parts.headers.get(USER_HEADER).ok_or_else(|| {
        invalid("an API key needs Ledgerhook-User: the user it spends for".into())
    })?;
    let user = value
        .to_str()
        .map_err(|_| invalid("Ledgerhook-User is not visible ASCII text".into()))?
        .trim();
    if user.is_empty() || user.len() > MAX_SUB_BYTES {
        return Err(invalid(format!(
            "Ledgerhook-User is 1 to {MAX_SUB_BYTES} bytes"
        )));
    }
    Ok(user.to_owned())
}
