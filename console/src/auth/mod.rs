//! Who is asking, and what they may do. Deny by default: every page but
//! the sign-in page and the static files needs a live session
//! ([`session::require`]); every state change needs the session's CSRF
//! token and a same-origin request ([`csrf::guard`]); acting needs the
//! `operator` role ([`Signed::may_act`]).
//!
//! A session is a random token in an HttpOnly, Secure, SameSite=Strict
//! cookie; the database keeps its SHA-256 only (`store::operators`), so
//! removing the operator or signing out ends it at once.

pub mod csrf;
pub mod login;
pub mod proxy;
pub mod session;

use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

use crate::refusal::Refusal;

/// The session cookie. `__Host-`: the browser takes it only from a secure
/// origin, for this host alone, for every path.
pub const COOKIE: &str = "__Host-ledgerhook-console";

/// The operator behind a request, put in its extensions by
/// [`session::require`].
#[derive(Debug, Clone)]
pub struct Signed {
    pub name: String,
    pub role: ledgerhook_store::operators::Role,
    pub csrf_token: String,
    /// The session's token hash (to sign out, to keep it on a password change).
    pub token_hash: Vec<u8>,
    /// Signed in through the trusted proxy (no console password of theirs).
    pub via_proxy: bool,
}

impl Signed {
    /// Refuses a viewer: they look, never act.
    pub fn may_act(&self) -> Result<&str, Refusal> {
        match self.role {
            ledgerhook_store::operators::Role::Operator => Ok(&self.name),
            ledgerhook_store::operators::Role::Viewer => Err(Refusal::new(
                StatusCode::FORBIDDEN,
                "ROLE_FORBIDDEN",
                format!("{} is a viewer: viewers look, never act", self.name),
            )),
        }
    }
}

/// A new random token (32 bytes, URL-safe base64) and its stored hash.
pub fn new_token() -> (String, Vec<u8>) {
    let token = URL_SAFE_NO_PAD.encode(ledgerhook_admin::password::random_bytes::<32>());
    let hash = token_hash(&token);
    (token, hash)
}

pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The session cookie's value, if the request carries one.
pub fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|cookies| cookies.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE && !value.is_empty() && value.len() <= 64).then_some(value)
        })
}

/// The `Set-Cookie` value that starts a session.
pub fn session_cookie(token: &str) -> String {
    format!("{COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=Strict")
}

/// The `Set-Cookie` value that ends one in the browser.
pub fn cleared_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0")
}

/// Equal in time independent of where two strings differ.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
