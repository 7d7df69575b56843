//! The gate in front of every page: a live session (or a trusted proxy's
//! user) or no page. A browser without one is sent to the sign-in page; an
//! operator who still holds their one-time password is sent to choose a
//! new one first.

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::{Signed, cookie_token, proxy, token_hash};
use crate::app::AppState;
use crate::refusal::Refusal;

/// The element whose htmx polling refreshes a running job's page.
pub const POLLING_ELEMENT: &str = "job";

/// Where an operator with a one-time password may still go.
const WHILE_CHANGING_PASSWORD: &[&str] = &["/password", "/logout"];

pub async fn require(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let from_proxy = match proxy::identify(&state, request.headers()).await {
        Ok(identified) => identified,
        Err(refusal) => return refusal.into_response(),
    };
    // A page refreshing itself (htmx polling a job) must not keep an
    // unattended browser's session alive.
    let passive = request
        .headers()
        .get("hx-trigger")
        .is_some_and(|v| v.as_bytes() == POLLING_ELEMENT.as_bytes());
    let found = match (&from_proxy, cookie_token(request.headers())) {
        (Some(proxied), _) => Ok(Some((proxied.signed.clone(), false))),
        // A session the proxy opened is good only through the proxy.
        (None, Some(token)) => lookup(&state, token, passive)
            .await
            .map(|found| found.filter(|(signed, _)| !signed.via_proxy)),
        (None, None) => Ok(None),
    };
    let (signed, must_change) = match found {
        Ok(Some(found)) => found,
        Ok(None) => return not_signed_in(request.method()),
        Err(refusal) => return refusal.into_response(),
    };
    if must_change && !WHILE_CHANGING_PASSWORD.contains(&request.uri().path()) {
        return Redirect::to("/password").into_response();
    }
    request.extensions_mut().insert(signed);
    let mut response = next.run(request).await;
    if let Some(cookie) = from_proxy.and_then(|p| p.new_cookie)
        && let Ok(value) = cookie.parse()
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// The live session this cookie names, and whether its operator must still
/// replace a one-time password.
async fn lookup(
    state: &AppState,
    token: &str,
    passive: bool,
) -> Result<Option<(Signed, bool)>, Refusal> {
    let hash = token_hash(token);
    let Some(session) =
        ledgerhook_store::operators::session(&state.pool, &hash, state.sessions, passive).await?
    else {
        return Ok(None);
    };
    let Some(role) = ledgerhook_store::operators::Role::parse(&session.role) else {
        return Ok(None);
    };
    Ok(Some((
        Signed {
            name: session.operator,
            role,
            csrf_token: session.csrf_token,
            token_hash: hash,
            via_proxy: session.via_proxy,
        },
        session.must_change_password,
    )))
}

/// A page asked for without a session: to the sign-in page; anything else
/// is refused outright (a form posted after the session ended).
fn not_signed_in(method: &Method) -> Response {
    if method == Method::GET || method == Method::HEAD {
        return Redirect::to("/login").into_response();
    }
    Refusal::new(
        StatusCode::UNAUTHORIZED,
        "NOT_SIGNED_IN",
        "sign in first: this session has ended or never began",
    )
    .into_response()
}
