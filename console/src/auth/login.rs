//! Signing in and out, and replacing the one-time password.
//!
//! A wrong name and a wrong password get the same answer in the same time
//! (an unknown name is checked against a decoy hash), and attempts are
//! limited per name and in all (`store::rate_limits`, shared by every
//! console process), so guessing costs the guesser, not us.

use std::time::Duration;

use axum::Extension;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use ledgerhook_admin::password;
use ledgerhook_store::operators;
use maud::{Markup, html};
use serde::Deserialize;

use super::{Signed, cleared_cookie, csrf, new_token, session_cookie};
use crate::app::AppState;
use crate::metrics;
use crate::pages::layout;
use crate::refusal::Refusal;

/// The window the sign-in limits count in.
const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Names that are no operator's share this many times the per-name limit.
const UNKNOWN_NAMES_FACTOR: u32 = 10;
/// How long a one-time password may wait for its first use.
const ONE_TIME_PASSWORD_LIFE: chrono::Duration = chrono::Duration::hours(72);

#[derive(Deserialize)]
pub struct Credentials {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

pub async fn page() -> Markup {
    form(None)
}

fn form(message: Option<&str>) -> Markup {
    layout::bare(
        "Sign in",
        html! {
            h1 { "ledgerhook console" }
            @if let Some(message) = message {
                p.refusal role="alert" { (message) }
            }
            form method="post" action="/login" {
                label { "Operator " input name="name" autocomplete="username" required autofocus; }
                label { "Password " input name="password" type="password" autocomplete="current-password" required; }
                button type="submit" { "Sign in" }
            }
        },
    )
}

pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(credentials): Form<Credentials>,
) -> Result<Response, Refusal> {
    csrf::same_origin(&headers)?;
    let name = credentials.name.trim().to_ascii_lowercase();
    let valid = ledgerhook_admin::operators::valid_name(&name)
        && credentials.password.len() <= password::MAX_LENGTH;
    let stored = if valid {
        operators::credentials(&state.pool, &name).await?
    } else {
        None
    };
    // Attempts on an operator's name count against that name; attempts on
    // names that are no operator's count against one shared budget (it
    // bounds the decoy hashing they cost). So a stranger cannot lock every
    // operator out at once, and guessing one operator's password is slow.
    let (key, limit) = match &stored {
        Some(_) => (format!("console-login:{name}"), state.login_attempts),
        None => (
            "console-login:unknown-names".to_owned(),
            state.login_attempts.saturating_mul(UNKNOWN_NAMES_FACTOR),
        ),
    };
    if let Err(wait) =
        ledgerhook_store::rate_limits::hit(&state.pool, &key, "console_login", limit, LOGIN_WINDOW)
            .await?
    {
        metrics::login("rate_limited");
        let mut refused = Refusal::new(
            StatusCode::TOO_MANY_REQUESTS,
            "LOGIN_RATE_LIMITED",
            format!("too many sign-in attempts; try again in {wait} s"),
        )
        .into_response();
        if let Ok(value) = wait.to_string().parse() {
            refused.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return Ok(refused);
    }
    let hash = stored
        .as_ref()
        .map_or(state.decoy_hash.as_str(), |c| c.password_hash.as_str());
    let password_ok = {
        let (attempt, hash) = (credentials.password.clone(), hash.to_owned());
        // argon2 is tens of milliseconds of CPU: off the async threads.
        tokio::task::spawn_blocking(move || password::verify(&attempt, &hash))
            .await
            .unwrap_or(false)
    };
    let expired = stored.as_ref().is_some_and(|c| {
        c.must_change_password && chrono::Utc::now() - c.created_at > ONE_TIME_PASSWORD_LIFE
    });
    if password_ok && expired {
        metrics::login("expired");
        return Ok((
            StatusCode::UNAUTHORIZED,
            form(Some("This one-time password has expired: ask for a new one (ledgerhook-admin operator remove, then add).")),
        )
            .into_response());
    }
    let Some(stored) = stored.filter(|_| password_ok) else {
        metrics::login("wrong");
        return Ok((
            StatusCode::UNAUTHORIZED,
            form(Some("Wrong operator name or password.")),
        )
            .into_response());
    };
    let (token, hash) = new_token();
    let (csrf_token, _) = new_token();
    operators::open_session(
        &state.pool,
        &hash,
        &name,
        &csrf_token,
        state.sessions,
        false,
    )
    .await?;
    metrics::login("ok");
    tracing::info!(operator = %name, "console sign-in");
    let to = if stored.must_change_password {
        "/password"
    } else {
        "/"
    };
    Ok((
        [(header::SET_COOKIE, session_cookie(&token))],
        Redirect::to(to),
    )
        .into_response())
}

pub async fn sign_out(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
) -> Result<Response, Refusal> {
    operators::close_session(&state.pool, &signed.token_hash).await?;
    Ok((
        [(header::SET_COOKIE, cleared_cookie())],
        Redirect::to("/login"),
    )
        .into_response())
}

pub async fn password_page(Extension(signed): Extension<Signed>) -> Markup {
    password_form(&signed, None)
}

fn password_form(signed: &Signed, message: Option<&str>) -> Markup {
    layout::bare(
        "Choose a password",
        html! {
            h1 { "Choose a password" }
            p { "Signed in as " strong { (signed.name) } ". Choose a password of at least "
                (password::MIN_LENGTH) " characters; your other sessions end." }
            @if let Some(message) = message {
                p.refusal role="alert" { (message) }
            }
            form method="post" action="/password" {
                input type="hidden" name="csrf" value=(signed.csrf_token);
                label { "Current (or one-time) password " input name="current" type="password" autocomplete="current-password" required; }
                label { "New password " input name="password" type="password" autocomplete="new-password" required; }
                label { "Again " input name="again" type="password" autocomplete="new-password" required; }
                button type="submit" { "Save" }
            }
        },
    )
}

#[derive(Deserialize)]
pub struct NewPassword {
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    again: String,
}

/// Replaces the signed-in operator's password. The current one is asked
/// for (a stolen session cookie must not be enough to take the account
/// over), the new one must differ from it, and the change is audited.
/// Operators signed in through the trusted proxy have no password here.
pub async fn change_password(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Form(new): Form<NewPassword>,
) -> Result<Response, Refusal> {
    if signed.via_proxy {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "PROXIED_SESSION",
            "you signed in through the authenticating proxy: your password is the proxy's",
        ));
    }
    let Some(stored) = operators::credentials(&state.pool, &signed.name).await? else {
        return Err(Refusal::not_found("no such operator any more"));
    };
    let (current, stored_hash) = (new.current.clone(), stored.password_hash.clone());
    let current_ok = new.current.len() <= password::MAX_LENGTH
        && tokio::task::spawn_blocking(move || password::verify(&current, &stored_hash))
            .await
            .unwrap_or(false);
    let problem = if current_ok {
        password::weakness(&new.password)
            .or_else(|| (new.password != new.again).then(|| "the two passwords differ".to_owned()))
            .or_else(|| {
                (new.password == new.current)
                    .then(|| "choose a password other than the current one".to_owned())
            })
    } else {
        Some("the current password is wrong".to_owned())
    };
    if let Some(problem) = problem {
        metrics::refused("WEAK_PASSWORD");
        return Ok((
            StatusCode::BAD_REQUEST,
            password_form(&signed, Some(&problem)),
        )
            .into_response());
    }
    let hash = tokio::task::spawn_blocking(move || password::hash(&new.password))
        .await
        .map_err(|e| anyhow::anyhow!("hashing: {e}"))??;
    let mut tx = state.pool.begin().await?;
    operators::set_password(&mut tx, &signed.name, &hash, &signed.token_hash).await?;
    ledgerhook_store::audit::record(
        &mut *tx,
        ledgerhook_store::audit::Entry {
            operator: Some(&signed.name),
            reason: None,
            command: "console password",
            arguments: serde_json::json!({}),
            result: serde_json::json!({"changed": true, "wasOneTime": stored.must_change_password}),
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(operator = %signed.name, "console password changed");
    Ok(Redirect::to("/").into_response())
}
