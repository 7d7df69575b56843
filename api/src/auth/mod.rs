//! Who is calling. A user arrives with `Authorization: Bearer <JWT>`,
//! signed either with the shared `AUTH_JWT_SECRET` (HS256: tokens the
//! product's own backend mints) or by the team's sign-in provider (RS256,
//! ES256 or EdDSA, checked against the keys it publishes at
//! `AUTH_JWKS_URL`); either or both may be configured. The product's
//! backend may instead spend for a user with an API key ([`Spender`]).
//!
//! The signature and the standard claims are checked by the `jsonwebtoken`
//! crate. What it leaves to us is closed here:
//! - the key is chosen by the token's algorithm *and* where keys of that
//!   kind come from (HS256: only the shared secret; the others: only the
//!   provider's set, each key bound to its own algorithm), so a token
//!   cannot have a public key used as an HMAC secret, and `none` is no
//!   algorithm at all;
//! - a `crit` header is refused: we implement no extension, and RFC 7515
//!   says a token needing one we do not understand is invalid;
//! - the rest is [`Policy`]: `exp` required and within the horizon, and a
//!   bounded user id without NUL.

mod api_key;
mod jwks;
mod policy;
mod shared_secret;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use jsonwebtoken::Algorithm;
use jsonwebtoken::errors::ErrorKind;
use serde_json::{Map, Value};

pub use api_key::{Spender, USER_HEADER};
pub use jwks::{Jwks, JwksSettings};
pub use policy::{DEFAULT_MAX_LIFETIME_SECS, LEEWAY_SECS, MAX_SUB_BYTES, Policy};
pub use shared_secret::{JwtSecret, MIN_SECRET_BYTES};

use crate::app::AppState;
use crate::error::ApiError;
use crate::metrics;
use policy::Signer;

/// Longer than any real token (an RS256 token with a few claims is under
/// 1 KiB); a longer one is refused before anything is decoded.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Why a token (or API key) is refused: the text the caller reads, and the
/// `reason` label of `ledgerhook_api_auth_refused_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Missing,
    NotBearer,
    Malformed,
    Algorithm,
    CriticalHeader,
    NoKeyId,
    UnknownKey,
    Signature,
    NoExpiry,
    Expired,
    NotYetValid,
    LifetimeTooLong,
    Issuer,
    Audience,
    NoUser,
    UserTooLong,
    ApiKey,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Self::Missing => "an Authorization: Bearer token is required",
            Self::NotBearer => "the Authorization header is not a Bearer token",
            Self::Malformed => "the token is not a readable JWT",
            Self::Algorithm => "the token's algorithm is not accepted for its key",
            Self::CriticalHeader => "the token has a crit header this API does not implement",
            Self::NoKeyId => "the token names no key (kid)",
            Self::UnknownKey => "the token's key (kid) is not one of the sign-in provider's",
            Self::Signature => "the token's signature does not verify",
            Self::NoExpiry => "the token has no exp",
            Self::Expired => "the token has expired",
            Self::NotYetValid => "the token is not valid yet",
            Self::LifetimeTooLong => "the token's lifetime is longer than this API accepts",
            Self::Issuer => "the token's issuer is not the one this API accepts",
            Self::Audience => "the token's audience does not include this API",
            Self::NoUser => "the token names no user",
            Self::UserTooLong => "the token's user id is longer than 256 bytes",
            Self::ApiKey => "the API key is not a live key",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::NotBearer => "not_bearer",
            Self::Malformed => "malformed",
            Self::Algorithm => "algorithm",
            Self::CriticalHeader => "crit",
            Self::NoKeyId => "no_kid",
            Self::UnknownKey => "unknown_kid",
            Self::Signature => "signature",
            Self::NoExpiry => "no_exp",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::LifetimeTooLong => "lifetime",
            Self::Issuer => "issuer",
            Self::Audience => "audience",
            Self::NoUser => "no_user",
            Self::UserTooLong => "user_too_long",
            Self::ApiKey => "api_key",
        }
    }

    fn from_jwt(kind: &ErrorKind) -> Self {
        match kind {
            ErrorKind::InvalidSignature
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidKeyFormat => Self::Signature,
            ErrorKind::InvalidAlgorithm
            | ErrorKind::InvalidAlgorithmName
            | ErrorKind::UnsupportedAlgorithm
            | ErrorKind::MissingAlgorithm => Self::Algorithm,
            ErrorKind::ExpiredSignature => Self::Expired,
            ErrorKind::ImmatureSignature => Self::NotYetValid,
            ErrorKind::InvalidIssuer => Self::Issuer,
            ErrorKind::InvalidAudience => Self::Audience,
            ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
                "iss" => Self::Issuer,
                "aud" => Self::Audience,
                _ => Self::NoExpiry,
            },
            _ => Self::Malformed,
        }
    }
}

/// A token that does not let its bearer in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Refused(Refusal),
    /// A NUL in the user id: the request is malformed (400), not
    /// unauthenticated.
    NulInSubject,
    /// The provider's keys could not be fetched and we have none: our
    /// outage, not the caller's fault (503, retry later).
    KeysUnavailable,
}

impl From<TokenError> for ApiError {
    fn from(error: TokenError) -> Self {
        match error {
            TokenError::Refused(refusal) => {
                metrics::auth_refused(refusal.label());
                ApiError::Unauthorized(refusal.message())
            }
            TokenError::NulInSubject => ApiError::nul_in_field("token sub"),
            TokenError::KeysUnavailable => {
                metrics::auth_refused("keys_unavailable");
                ApiError::AuthKeysUnavailable
            }
        }
    }
}

/// Every way a token may be signed here, and what it must say.
pub struct Authenticator {
    pub shared_secret: Option<JwtSecret>,
    pub jwks: Option<Jwks>,
    pub policy: Policy,
}

impl Authenticator {
    /// The user id of a valid token.
    pub async fn user(&self, token: &str) -> Result<String, TokenError> {
        let refused = TokenError::Refused;
        if token.len() > MAX_TOKEN_BYTES {
            return Err(refused(Refusal::Malformed));
        }
        // Unverified: it only says which key to try. An unknown `alg`
        // (`none` among them) does not parse.
        let header = jsonwebtoken::decode_header(token).map_err(|_| refused(Refusal::Malformed))?;
        if header.crit.is_some() {
            return Err(refused(Refusal::CriticalHeader));
        }
        let (key, signer) = match header.alg {
            Algorithm::HS256 => {
                let secret = self
                    .shared_secret
                    .as_ref()
                    .ok_or(refused(Refusal::Algorithm))?;
                (secret.decoding_key(), Signer::SharedSecret)
            }
            Algorithm::RS256 | Algorithm::ES256 | Algorithm::EdDSA => {
                let jwks = self.jwks.as_ref().ok_or(refused(Refusal::Algorithm))?;
                let kid = header.kid.as_deref().ok_or(refused(Refusal::NoKeyId))?;
                (jwks.key(kid, header.alg).await?, Signer::Provider)
            }
            _ => return Err(refused(Refusal::Algorithm)),
        };
        let validation = self.policy.validation(header.alg, signer);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| refused(Refusal::from_jwt(e.kind())))?;
        self.policy
            .user(&data.claims, chrono::Utc::now().timestamp())
    }
}

/// The bearer credential of a request: a token or an API key.
fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let header = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or(TokenError::Refused(Refusal::Missing))?;
    header
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| TokenError::Refused(Refusal::NotBearer).into())
}

/// The authenticated user; taking it as a handler argument is what makes a
/// route require the user's own valid token.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
}

impl FromRequestParts<AppState> for User {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts)?;
        let id = state.auth.user(token).await?;
        Ok(Self { id })
    }
}

#[cfg(test)]
mod tests;
