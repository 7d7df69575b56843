//! What a verified token must also say before we believe it, whoever signed
//! it: an `exp` no further away than the horizon (a leaked token must not
//! live for years), and a user id that is a bounded text without NUL. The
//! sign-in provider's tokens must also name the configured issuer and
//! audience, when those are set.

use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use super::{Refusal, TokenError};

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 30;
/// Longest user id a token may carry; it is stored beside every order.
pub const MAX_SUB_BYTES: usize = 256;
/// Default for `AUTH_MAX_TOKEN_LIFETIME_SECS`.
pub const DEFAULT_MAX_LIFETIME_SECS: i64 = 24 * 60 * 60;

#[derive(Debug, Clone)]
pub struct Policy {
    /// `AUTH_MAX_TOKEN_LIFETIME_SECS`: a token whose `exp` is further away
    /// than this is refused.
    pub max_lifetime_secs: i64,
    /// `AUTH_USER_CLAIM` (default `sub`): the claim holding the user id.
    pub user_claim: String,
    /// `AUTH_ISSUER`: the `iss` the sign-in provider's tokens must carry.
    pub issuer: Option<String>,
    /// `AUTH_AUDIENCE`: a value their `aud` must contain.
    pub audience: Option<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_lifetime_secs: DEFAULT_MAX_LIFETIME_SECS,
            user_claim: "sub".to_owned(),
            issuer: None,
            audience: None,
        }
    }
}

/// Who signed the token: issuer and audience describe the sign-in provider,
/// so they are asked of its tokens only, not of the shared secret's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    SharedSecret,
    Provider,
}

impl Policy {
    /// The checks `jsonwebtoken` makes for a token signed with `alg`: that
    /// one algorithm only, `exp` required, `nbf` honoured.
    pub fn validation(&self, alg: Algorithm, signer: Signer) -> Validation {
        let mut validation = Validation::new(alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        let mut required = vec!["exp"];
        if signer == Signer::Provider {
            if let Some(issuer) = &self.issuer {
                validation.set_issuer(&[issuer]);
                required.push("iss");
            }
            if let Some(audience) = &self.audience {
                validation.set_audience(&[audience]);
                validation.validate_aud = true;
                required.push("aud");
            }
        }
        validation.set_required_spec_claims(&required);
        validation
    }

    /// The user id of a token whose signature and standard claims were
    /// checked, at `now` (unix seconds).
    pub fn user(&self, claims: &Map<String, Value>, now: i64) -> Result<String, TokenError> {
        // Checked present and numeric by the validation already.
        let exp = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or(TokenError::Refused(Refusal::Malformed))?;
        if exp.saturating_sub(now) > self.max_lifetime_secs.saturating_add(LEEWAY_SECS as i64) {
            return Err(TokenError::Refused(Refusal::LifetimeTooLong));
        }
        let user = claims
            .get(&self.user_claim)
            .and_then(Value::as_str)
            .ok_or(TokenError::Refused(Refusal::NoUser))?;
        if user.trim().is_empty() {
            return Err(TokenError::Refused(Refusal::NoUser));
        }
        if user.len() > MAX_SUB_BYTES {
            return Err(TokenError::Refused(Refusal::UserTooLong));
        }
        if user.contains('\0') {
            return Err(TokenError::NulInSubject);
        }
        Ok(user.to_owned())
    }
}
