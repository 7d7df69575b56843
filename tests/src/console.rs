//! The console in-process, for handler tests: its router over a test's own
//! database and broker, driven with `tower::ServiceExt::oneshot`, and a
//! signed-in operator that carries its cookie and CSRF token like a
//! browser.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use ledgerhook_console::{AppState, Config, router};
use ledgerhook_runtime::config::EnvReader;
use tower::ServiceExt as _;

use crate::harness::TestEnv;

/// The console's router on `env`, with `extra` configuration.
pub async fn console(env: &TestEnv, extra: &[(&str, &str)]) -> Router {
    let mut vars: Vec<(String, String)> = vec![
        ("DATABASE_URL".into(), env.database_url.clone()),
        ("AMQP_URL".into(), env.amqp_url.clone()),
        ("QUEUE_PREFIX".into(), env.queue_prefix.clone()),
    ];
    vars.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let config = Config::from_reader(EnvReader::new(move |name: &str| {
        vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }))
    .expect("a valid console configuration");
    let pool = ledgerhook_store::db::connect_bounded(
        &env.database_url,
        4,
        "ledgerhook-console-test",
        ledgerhook_store::db::Migrations::Apply,
        Some(config.statement_timeout),
    )
    .await
    .expect("the console's pool");
    router(AppState::new(pool, &config).expect("the console's state"))
}

/// An answer: status, headers, body as text.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The value of the first `<input name="NAME" ... value="...">`.
    pub fn input(&self, name: &str) -> Option<String> {
        let at = self.body.find(&format!("name=\"{name}\""))?;
        let tag_start = self.body[..at].rfind('<')?;
        let tag_end = at + self.body[at..].find('>')?;
        let tag = &self.body[tag_start..tag_end];
        let value = tag.split_once("value=\"")?.1.split_once('"')?.0;
        Some(value.replace("&amp;", "&").replace("&quot;", "\""))
    }
}

pub async fn send(router: &Router, request: Request<Body>) -> Page {
    let response = router
        .clone()
        .oneshot(request)
        .await
        .expect("the router answers");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    Page {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

pub fn get(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut request = Request::get(path).header(header::HOST, "console.test");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    request.body(Body::empty()).expect("a request")
}

pub fn post(path: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> Request<Body> {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut request = Request::post(path)
        .header(header::HOST, "console.test")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    request.body(Body::from(body)).expect("a request")
}

/// The `name=value` of a response's session cookie.
pub fn session_cookie(page: &Page) -> Option<String> {
    page.headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(ledgerhook_console::auth::COOKIE))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
}

/// A signed-in operator: their cookie and CSRF token.
#[derive(Debug, Clone)]
pub struct Operator {
    pub cookie: String,
    pub csrf: String,
}

impl Operator {
    pub async fn get(&self, router: &Router, path: &str) -> Page {
        send(router, get(path, Some(&self.cookie))).await
    }

    /// POSTs `form` with the CSRF token.
    pub async fn post(&self, router: &Router, path: &str, form: &[(&str, &str)]) -> Page {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(form);
        send(router, post(path, Some(&self.cookie), &all)).await
    }
}

/// Adds `name` with `role` through `ledgerhook-admin operator add`; the
/// one-time password it printed.
pub async fn one_time_password(env: &TestEnv, name: &str, role: &str) -> String {
    let run = env
        .admin_run(
            &[
                "--json",
                "--operator",
                "root",
                "operator",
                "add",
                name,
                "--role",
                role,
            ],
            &[],
        )
        .await
        .expect("ledgerhook-admin runs");
    assert_eq!(run.code, Some(0), "{run:?}");
    run.json()["oneTimePassword"]
        .as_str()
        .expect("a one-time password")
        .to_owned()
}

/// Adds `name` with `role`, signs in with the one-time password, replaces
/// it, and returns the session.
pub async fn operator(env: &TestEnv, router: &Router, name: &str, role: &str) -> Operator {
    let one_time = one_time_password(env, name, role).await;
    let signed_in = send(
        router,
        post("/login", None, &[("name", name), ("password", &one_time)]),
    )
    .await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER, "{signed_in:?}");
    assert_eq!(signed_in.location(), "/password");
    let cookie = session_cookie(&signed_in).expect("a session cookie");
    let form = send(router, get("/password", Some(&cookie))).await;
    let csrf = form.input("csrf").expect("the CSRF token");
    let operator = Operator { cookie, csrf };
    let new_password = format!("{name}-chosen-password");
    let changed = operator
        .post(
            router,
            "/password",
            &[
                ("current", &one_time),
                ("password", &new_password),
                ("again", &new_password),
            ],
        )
        .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER, "{changed:?}");
    operator
}
