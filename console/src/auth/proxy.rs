//! An authenticating proxy in front of the console (oauth2-proxy, say):
//! when `CONSOLE_PROXY_SECRET` is set, a request carrying that secret in
//! `x-console-proxy-secret` and a user in the configured header is that
//! user's, if they are an operator. A session is opened for them on the
//! first such request (the CSRF token lives in it), and reused while the
//! proxy names the same operator.

use axum::http::{HeaderMap, StatusCode};

use super::{Signed, cookie_token, new_token, same, token_hash};
use crate::app::AppState;
use crate::config::PROXY_SECRET_HEADER;
use crate::metrics;
use crate::refusal::Refusal;

/// The operator a trusted proxy named, and the cookie to set when a
/// session was opened for them.
pub struct Proxied {
    pub signed: Signed,
    pub new_cookie: Option<String>,
}

/// `Ok(None)`: no proxy configured, or the request did not come through it
/// (no secret header); the cookie decides. A wrong secret is refused: a
/// request that claims to come through the proxy and does not is an attack
/// or a misconfiguration, never a visitor.
pub async fn identify(state: &AppState, headers: &HeaderMap) -> Result<Option<Proxied>, Refusal> {
    let Some(proxy) = &state.proxy else {
        return Ok(None);
    };
    let Some(sent) = headers.get(PROXY_SECRET_HEADER) else {
        return Ok(None);
    };
    if !same(sent.as_bytes(), proxy.secret.expose().as_bytes()) {
        return Err(Refusal::new(
            StatusCode::UNAUTHORIZED,
            "PROXY_SECRET_MISMATCH",
            "the request names the authenticating proxy's secret, wrongly",
        ));
    }
    let name = headers
        .get(&proxy.user_header)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or_default()
        .to_ascii_lowercase();
    let role = if ledgerhook_admin::operators::valid_name(&name) {
        ledgerhook_store::operators::role_of(&state.pool, &name).await?
    } else {
        None
    };
    let Some(role) = role
        .as_deref()
        .and_then(ledgerhook_store::operators::Role::parse)
    else {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "NOT_AN_OPERATOR",
            "the proxy's user is not a console operator (ledgerhook-admin operator add)",
        ));
    };
    // The session this browser holds, if it is this operator's.
    if let Some(token) = cookie_token(headers) {
        let hash = token_hash(token);
        if let Some(session) =
            ledgerhook_store::operators::session(&state.pool, &hash, state.sessions, false).await?
            && session.operator == name
            && session.via_proxy
        {
            return Ok(Some(Proxied {
                signed: Signed {
                    name,
                    role,
                    csrf_token: session.csrf_token,
                    token_hash: hash,
                    via_proxy: true,
                },
                new_cookie: None,
            }));
        }
    }
    let (token, hash) = new_token();
    let (csrf_token, _) = new_token();
    ledgerhook_store::operators::open_session(
        &state.pool,
        &hash,
        &name,
        &csrf_token,
        state.sessions,
        true,
    )
    .await?;
    metrics::login("proxy");
    Ok(Some(Proxied {
        signed: Signed {
            name,
            role,
            csrf_token,
            token_hash: hash,
            via_proxy: true,
        },
        new_cookie: Some(super::session_cookie(&token)),
    }))
}
