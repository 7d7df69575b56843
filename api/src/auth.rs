//! `Authorization: Bearer <JWT>`: HS256 only, signature checked in constant
//! time before anything in the token is believed, `exp` required and no
//! further away than the configured horizon (a leaked token must not live
//! for years), `sub` is the user id: at most 256 bytes, no NUL.
//!
//! Hand-written over hmac/sha2/base64 (already in the tree) rather than a
//! JWT crate: one algorithm is all we accept, and accepting exactly one is
//! what closes the classic holes (`alg: none`, RS/HS confusion).

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::app::AppState;
use crate::error::ApiError;

/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECS: i64 = 30;
/// HS256 wants a key at least as long as its output (RFC 7518 3.2).
pub const MIN_SECRET_BYTES: usize = 32;
/// Longest user id a token may carry; it is stored beside every order.
pub const MAX_SUB_BYTES: usize = 256;
/// Default for `AUTH_MAX_TOKEN_LIFETIME_SECS`.
pub const DEFAULT_MAX_LIFETIME_SECS: i64 = 24 * 60 * 60;

/// Why a token is refused. Only a NUL in `sub` is the caller's request
/// being malformed rather than unauthenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Unauthorized(&'static str),
    NulInSubject,
}

impl From<TokenError> for ApiError {
    fn from(error: TokenError) -> Self {
        match error {
            TokenError::Unauthorized(reason) => ApiError::Unauthorized(reason),
            TokenError::NulInSubject => ApiError::nul_in_field("token sub"),
        }
    }
}

/// The HS256 key and the longest lifetime a token may claim; the key's text
/// never reaches a log (Debug is redacted).
#[derive(Clone)]
pub struct JwtSecret {
    key: Vec<u8>,
    max_lifetime_secs: i64,
}

impl std::fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtSecret(<redacted>)")
    }
}

impl JwtSecret {
    pub fn new(secret: &str) -> Option<Self> {
        (secret.len() >= MIN_SECRET_BYTES).then(|| Self {
            key: secret.as_bytes().to_vec(),
            max_lifetime_secs: DEFAULT_MAX_LIFETIME_SECS,
        })
    }

    /// Tokens whose `exp` is further than this from now are refused.
    pub fn with_max_lifetime(mut self, secs: i64) -> Self {
        self.max_lifetime_secs = secs;
        self
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes a key of any length")
    }

    /// A signed token for `sub`, valid until `exp` (unix seconds); for the
    /// `ledgerhook-token` tool and tests.
    pub fn sign(&self, sub: &str, exp: i64) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let claims = serde_json::to_vec(&Claims {
            sub: sub.to_owned(),
            exp,
            nbf: None,
        })
        .expect("claims serialise");
        let signing_input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims));
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{signature}")
    }

    /// The user id of a valid token at `now` (unix seconds).
    pub fn verify(&self, token: &str, now: i64) -> Result<String, TokenError> {
        let sub = self.claims(token, now).map_err(TokenError::Unauthorized)?;
        if sub.contains('\0') {
            return Err(TokenError::NulInSubject);
        }
        Ok(sub)
    }

    fn claims(&self, token: &str, now: i64) -> Result<String, &'static str> {
        let mut parts = token.split('.');
        let (Some(header), Some(claims), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("the token is not a JWT");
        };
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| "the token's signature is not base64url")?;
        let mut mac = self.mac();
        mac.update(header.as_bytes());
        mac.update(b".");
        mac.update(claims.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| "the token's signature does not verify")?;

        // Signed by us; still, only HS256 is accepted.
        let header: Header = decode_json(header).ok_or("the token's header is unreadable")?;
        if header.alg != "HS256" {
            return Err("the token's algorithm is not HS256");
        }
        let claims: Claims = decode_json(claims).ok_or("the token's claims are unreadable")?;
        if claims.exp + LEEWAY_SECS <= now {
            return Err("the token has expired");
        }
        if claims.exp.saturating_sub(now) > self.max_lifetime_secs.saturating_add(LEEWAY_SECS) {
            return Err("the token's lifetime is longer than this API accepts");
        }
        if claims.nbf.is_some_and(|nbf| nbf - LEEWAY_SECS > now) {
            return Err("the token is not valid yet");
        }
        if claims.sub.trim().is_empty() {
            return Err("the token names no user");
        }
        if claims.sub.len() > MAX_SUB_BYTES {
            return Err("the token's user id is longer than 256 bytes");
        }
        Ok(claims.sub)
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The authenticated caller; taking it as a handler argument is what makes
/// a route require a valid token.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
}

impl FromRequestParts<AppState> for User {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::Unauthorized("an Authorization: Bearer token is required"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::Unauthorized("the Authorization header is not a Bearer token")
            })?;
        let now = chrono::Utc::now().timestamp();
        let id = state
            .jwt
            .verify(token.trim(), now)
            .map_err(ApiError::from)?;
        Ok(Self { id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn secret() -> JwtSecret {
        JwtSecret::new("test-only-jwt-secret-0123456789abcdef").unwrap()
    }

    fn forge(header: &str, claims: &str, key: &JwtSecret) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let mut mac = key.mac();
        mac.update(input.as_bytes());
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    #[test]
    fn a_signed_token_names_its_user() {
        let token = secret().sign("user-1", NOW + 60);
        assert_eq!(secret().verify(&token, NOW).unwrap(), "user-1");
    }

    #[test]
    fn expired_tokens_are_refused_after_the_leeway() {
        let token = secret().sign("user-1", NOW - 10);
        assert!(secret().verify(&token, NOW).is_ok(), "within the leeway");
        let token = secret().sign("user-1", NOW - LEEWAY_SECS - 1);
        assert_eq!(
            secret().verify(&token, NOW),
            Err(TokenError::Unauthorized("the token has expired"))
        );
    }

    #[test]
    fn another_key_or_a_changed_claim_is_refused() {
        let other = JwtSecret::new("another-test-secret-0123456789abcdef").unwrap();
        let token = other.sign("user-1", NOW + 60);
        assert!(secret().verify(&token, NOW).is_err());

        let token = secret().sign("user-1", NOW + 60);
        let mut parts: Vec<&str> = token.split('.').collect();
        let tampered = URL_SAFE_NO_PAD.encode(format!(r#"{{"sub":"user-2","exp":{}}}"#, NOW + 60));
        parts[1] = &tampered;
        assert!(secret().verify(&parts.join("."), NOW).is_err());
    }

    #[test]
    fn only_hs256_is_accepted() {
        let claims = format!(r#"{{"sub":"u","exp":{}}}"#, NOW + 60);
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(&claims)
        );
        assert!(secret().verify(&none, NOW).is_err());
        let hs512 = forge(r#"{"alg":"HS512"}"#, &claims, &secret());
        assert_eq!(
            secret().verify(&hs512, NOW),
            Err(TokenError::Unauthorized(
                "the token's algorithm is not HS256"
            ))
        );
    }

    #[test]
    fn exp_and_sub_are_required() {
        let no_exp = forge(r#"{"alg":"HS256"}"#, r#"{"sub":"u"}"#, &secret());
        assert!(secret().verify(&no_exp, NOW).is_err());
        let no_sub = forge(
            r#"{"alg":"HS256"}"#,
            &format!(r#"{{"exp":{}}}"#, NOW + 60),
            &secret(),
        );
        assert!(secret().verify(&no_sub, NOW).is_err());
        let future = forge(
            r#"{"alg":"HS256"}"#,
            &format!(r#"{{"sub":"u","exp":{},"nbf":{}}}"#, NOW + 600, NOW + 300),
            &secret(),
        );
        assert_eq!(
            secret().verify(&future, NOW),
            Err(TokenError::Unauthorized("the token is not valid yet"))
        );
    }

    #[test]
    fn a_token_living_longer_than_the_horizon_is_refused() {
        let day = DEFAULT_MAX_LIFETIME_SECS;
        assert!(secret().verify(&secret().sign("u", NOW + day), NOW).is_ok());
        let forever = secret().sign("u", NOW + 10 * 365 * day);
        assert_eq!(
            secret().verify(&forever, NOW),
            Err(TokenError::Unauthorized(
                "the token's lifetime is longer than this API accepts"
            ))
        );
        let short = secret().with_max_lifetime(60);
        assert!(short.verify(&short.sign("u", NOW + 3600), NOW).is_err());
        assert!(short.verify(&short.sign("u", NOW + 60), NOW).is_ok());
    }

    #[test]
    fn an_oversized_or_nul_subject_is_refused() {
        let long = "u".repeat(MAX_SUB_BYTES + 1);
        assert!(matches!(
            secret().verify(&secret().sign(&long, NOW + 60), NOW),
            Err(TokenError::Unauthorized(_))
        ));
        let exact = "u".repeat(MAX_SUB_BYTES);
        assert!(
            secret()
                .verify(&secret().sign(&exact, NOW + 60), NOW)
                .is_ok()
        );
        assert_eq!(
            secret().verify(&secret().sign("user\u{0}1", NOW + 60), NOW),
            Err(TokenError::NulInSubject)
        );
    }

    #[test]
    fn garbage_is_refused_and_short_secrets_are_not_keys() {
        for token in ["", "a.b", "a.b.c.d", "....", "x.y.z"] {
            assert!(secret().verify(token, NOW).is_err(), "{token}");
        }
        assert!(JwtSecret::new("short").is_none());
    }
}
