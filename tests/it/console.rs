//! The operator console's handlers, in-process through
//! `tower::ServiceExt::oneshot` against a real database and broker (and a
//! real ingester and worker for the deliveries it shows): signing in, deny
//! by default, CSRF, roles, every page, every action, bad input, escaping.

use std::time::Duration;

use axum::http::{StatusCode, header};
use ledgerhook_console::security::CONTENT_SECURITY_POLICY;
use ledgerhook_tests::console::{
    Operator, console, get, one_time_password, operator, post, send, session_cookie,
};
use ledgerhook_tests::fake_crossmint::{FAKE_API_KEY, FakeCrossmint};
use ledgerhook_tests::harness::{TestEnv, eventually, seen};
use ledgerhook_tests::webhook::{new_delivery_id, payment_succeeded};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn signing_in_is_required_limited_and_revocable() {
    let env = TestEnv::new().await.unwrap();
    let router = console(&env, &[("CONSOLE_LOGIN_ATTEMPTS_PER_15_MINUTES", "3")]).await;

    // Deny by default: a page sends to the sign-in page, a state change is 401.
    let page = send(&router, get("/", None)).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/login");
    for path in ["/deliveries", "/audit", "/users?id=x", "/deliveries/1"] {
        assert_eq!(
            send(&router, get(path, None)).await.location(),
            "/login",
            "{path}"
        );
    }
    let refused = send(
        &router,
        post("/control", None, &[("paused", "true"), ("reason", "x")]),
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.body.contains("NOT_SIGNED_IN"), "{}", refused.body);

    // Open without a session: health, the static files (cached for good),
    // and nothing else.
    assert_eq!(
        send(&router, get("/healthz", None)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(&router, get("/readyz", None)).await.status,
        StatusCode::OK
    );
    let htmx = send(&router, get(ledgerhook_console::assets::HTMX_PATH, None)).await;
    assert_eq!(htmx.status, StatusCode::OK);
    assert!(htmx.body.starts_with("var htmx="), "the vendored htmx");
    assert!(
        htmx.headers[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let css = send(&router, get(ledgerhook_console::assets::CSS_PATH, None)).await;
    assert_eq!(css.headers[header::CONTENT_TYPE], "text/css; charset=utf-8");
    let missing = send(&router, get("/no-such-page", None)).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("NOT_FOUND"));

    // The sign-in page: strict CSP, no inline script.
    let login = send(&router, get("/login", None)).await;
    assert_eq!(login.status, StatusCode::OK);
    assert_eq!(
        login.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap(),
        CONTENT_SECURITY_POLICY
    );
    assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
    assert!(
        !login.body.contains("<script>"),
        "no inline script: {}",
        login.body
    );

    // The one-time password signs in once, and only to choose a new one.
    let run = env
        .admin_run(
            &[
                "--json",
                "--operator",
                "root",
                "operator",
                "add",
                "dana",
                "--role",
                "operator",
            ],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    let one_time = run.json()["oneTimePassword"].as_str().unwrap().to_owned();
    let listed = env.admin(&["operator", "list"]).await.unwrap();
    assert!(
        listed.contains("dana\toperator") && !listed.contains(&one_time),
        "{listed}"
    );
    let first = send(
        &router,
        post("/login", None, &[("name", "dana"), ("password", &one_time)]),
    )
    .await;
    assert_eq!(first.location(), "/password");
    let set_cookie = first.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(set_cookie.starts_with("__Host-"), "{set_cookie}");
    let cookie = session_cookie(&first).unwrap();
    // Anything else waits until the password is replaced.
    assert_eq!(
        send(&router, get("/", Some(&cookie))).await.location(),
        "/password"
    );
    let form = send(&router, get("/password", Some(&cookie))).await;
    let dana = Operator {
        cookie,
        csrf: form.input("csrf").unwrap(),
    };
    let change = |current: &str, new: &str, again: &str| {
        let form = [("current", current), ("password", new), ("again", again)]
            .map(|(k, v)| (k, v.to_owned()));
        let dana = dana.clone();
        let router = router.clone();
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            dana.post(&router, "/password", &form).await
        }
    };
    let weak = change(&one_time, "short", "short").await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST);
    assert!(weak.body.contains("at least 12"), "{}", weak.body);
    let differ = change(&one_time, "long enough one", "long enough two").await;
    assert!(
        differ.body.contains("the two passwords differ"),
        "{}",
        differ.body
    );
    // A stolen session cookie is not enough: the current password is asked.
    let no_current = change(
        "not the password",
        "a long new password",
        "a long new password",
    )
    .await;
    assert!(
        no_current.body.contains("the current password is wrong"),
        "{}",
        no_current.body
    );
    let same = change(&one_time, &one_time, &one_time).await;
    assert!(
        same.body.contains("other than the current one"),
        "{}",
        same.body
    );
    let too_long = "é".repeat(200);
    let long = change(&one_time, &too_long, &too_long).await;
    assert!(long.body.contains("at most 256 bytes"), "{}", long.body);
    let chosen = "dana's own long password";
    let changed = change(&one_time, chosen, chosen).await;
    assert_eq!(changed.location(), "/");
    assert_eq!(dana.get(&router, "/").await.status, StatusCode::OK);
    // The one-time password is spent.
    let again = send(
        &router,
        post("/login", None, &[("name", "dana"), ("password", &one_time)]),
    )
    .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);

    assert_eq!(
        env.count("select count(*) from operator_actions where command = 'console password' and operator = 'dana'")
            .await,
        1,
        "the change is audited"
    );
    // A one-time password left unused for 72 hours no longer signs in.
    let stale = one_time_password(&env, "stale", "viewer").await;
    sqlx::query("update console_operators set created_at = now() - interval '73 hours' where name = 'stale'")
        .execute(&env.pool)
        .await
        .unwrap();
    let expired = send(
        &router,
        post("/login", None, &[("name", "stale"), ("password", &stale)]),
    )
    .await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert!(expired.body.contains("has expired"), "{}", expired.body);

    // A wrong password and an unknown name get the same answer.
    let wrong = send(
        &router,
        post(
            "/login",
            None,
            &[("name", "dana"), ("password", "not it at all")],
        ),
    )
    .await;
    let unknown = send(
        &router,
        post(
            "/login",
            None,
            &[("name", "nobody"), ("password", "not it at all")],
        ),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.body, unknown.body);
    // Three attempts per name in 15 minutes: the one-time password, its
    // second use and the wrong one were dana's three; the right password
    // must wait now.
    let limited = send(
        &router,
        post("/login", None, &[("name", "dana"), ("password", chosen)]),
    )
    .await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS, "{limited:?}");
    assert!(limited.body.contains("LOGIN_RATE_LIMITED"));
    assert!(limited.headers.contains_key(header::RETRY_AFTER));
    // Another name is not limited by dana's attempts.
    let other = operator(&env, &router, "erin", "viewer").await;
    assert_eq!(other.get(&router, "/").await.status, StatusCode::OK);

    // A session idle past its timeout, or older than its lifetime, is over.
    let idle = operator(&env, &router, "ida", "viewer").await;
    let lived = operator(&env, &router, "lee", "viewer").await;
    assert_eq!(idle.get(&router, "/").await.status, StatusCode::OK);
    sqlx::query("update console_sessions set last_seen_at = now() - interval '31 minutes' where operator = 'ida'")
        .execute(&env.pool)
        .await
        .unwrap();
    sqlx::query("update console_sessions set created_at = now() - interval '13 hours' where operator = 'lee'")
        .execute(&env.pool)
        .await
        .unwrap();
    assert_eq!(
        idle.get(&router, "/").await.location(),
        "/login",
        "idle timeout"
    );
    assert_eq!(
        lived.get(&router, "/").await.location(),
        "/login",
        "lifetime"
    );

    // A statement that runs past CONSOLE_STATEMENT_TIMEOUT_MS is cut, and
    // the page says why: here a lock holds the table.
    let bounded = console(&env, &[("CONSOLE_STATEMENT_TIMEOUT_MS", "300")]).await;
    let bounded_viewer = operator(&env, &bounded, "tim", "viewer").await;
    let mut blocker = env.pool.begin().await.unwrap();
    sqlx::query("lock table webhook_deliveries in access exclusive mode")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let cut = bounded_viewer.get(&bounded, "/deliveries").await;
    assert_eq!(cut.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", cut.body);
    assert!(cut.body.contains("SEARCH_TOO_COSTLY"), "{}", cut.body);
    assert!(started.elapsed() < Duration::from_secs(5));
    blocker.rollback().await.unwrap();

    // Signing out ends the session at once.
    let out = dana.post(&router, "/logout", &[]).await;
    assert_eq!(out.location(), "/login");
    assert_eq!(dana.get(&router, "/").await.location(), "/login");
    // Removing an operator ends theirs.
    let removed = env
        .admin_run(&["--operator", "root", "operator", "remove", "erin"], &[])
        .await
        .unwrap();
    assert_eq!(removed.code, Some(0), "{removed:?}");
    assert_eq!(other.get(&router, "/").await.location(), "/login");
    // Each change is in the audit trail.
    let audited = env
        .count("select count(*) from operator_actions where command in ('operator add', 'operator remove')")
        .await;
    assert_eq!(audited, 7);
}

#[tokio::test]
async fn a_trusted_proxy_names_the_operator_only_with_its_secret() {
    let env = TestEnv::new().await.unwrap();
    let secret = "fake-proxy-secret-for-tests-0123456789";
    let router = console(&env, &[("CONSOLE_PROXY_SECRET", secret)]).await;
    env.admin_run(
        &[
            "--operator",
            "root",
            "operator",
            "add",
            "pat",
            "--role",
            "viewer",
        ],
        &[],
    )
    .await
    .unwrap();
    let through = |user: &str, sent: &str| {
        axum::http::Request::get("/")
            .header(header::HOST, "console.test")
            .header("x-forwarded-user", user)
            .header("x-console-proxy-secret", sent)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let ok = send(&router, through("pat", secret)).await;
    assert_eq!(ok.status, StatusCode::OK, "{ok:?}");
    assert!(ok.body.contains("pat (viewer)"), "{}", ok.body);
    let proxy_cookie = session_cookie(&ok).expect("a session for the CSRF token");
    // That session is good only through the proxy: its cookie alone is not.
    assert_eq!(
        send(&router, get("/", Some(&proxy_cookie)))
            .await
            .location(),
        "/login"
    );
    // And the proxy's user has no console password to change.
    let proxied = |mut request: axum::http::Request<axum::body::Body>| {
        request
            .headers_mut()
            .insert("x-forwarded-user", "pat".parse().unwrap());
        request
            .headers_mut()
            .insert("x-console-proxy-secret", secret.parse().unwrap());
        request
    };
    let page = send(&router, proxied(get("/", Some(&proxy_cookie)))).await;
    let csrf = page.input("csrf").expect("the sign-out form's token");
    let change = proxied(post(
        "/password",
        Some(&proxy_cookie),
        &[
            ("csrf", &csrf),
            ("current", "x"),
            ("password", "a long new password"),
            ("again", "a long new password"),
        ],
    ));
    let refused = send(&router, change).await;
    assert!(refused.body.contains("PROXIED_SESSION"), "{}", refused.body);
    let wrong = send(
        &router,
        through("pat", "fake-proxy-secret-for-tests-WRONG-----"),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("PROXY_SECRET_MISMATCH"));
    let stranger = send(&router, through("mallory", secret)).await;
    assert_eq!(stranger.status, StatusCode::FORBIDDEN);
    assert!(stranger.body.contains("NOT_AN_OPERATOR"));
    // The user header alone, without the secret, signs nobody in.
    let bare = axum::http::Request::get("/")
        .header("x-forwarded-user", "pat")
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(send(&router, bare).await.location(), "/login");
}

/// One world for the pages and actions: deliveries processed by the real
/// ingester and worker, then read and acted on through the console.
#[tokio::test]
async fn every_page_shows_escaped_data_and_every_action_is_guarded_and_audited() {
    let env = TestEnv::new().await.unwrap();
    // Keeps 3 refused requests per reason, noting at most 5 a second.
    let ingester = env
        .start_ingester(&[
            ("REJECTED_REQUESTS_KEPT", "3"),
            ("REJECTED_REQUESTS_PER_SECOND", "5"),
        ])
        .await
        .unwrap();
    // Two attempts, 100 ms apart: an order nobody recorded is retried once, then parked.
    let _worker = env
        .start_worker(&[
            ("WORKER_RETRY_ATTEMPTS", "2"),
            ("WORKER_RETRY_INITIAL_MS", "100"),
        ])
        .await
        .unwrap();
    // The console asks Crossmint for a held order's own view.
    let crossmint = FakeCrossmint::start().await.unwrap();
    let router = console(
        &env,
        &[
            ("CROSSMINT_API_URL", &crossmint.api_url),
            ("CROSSMINT_SERVER_API_KEY", FAKE_API_KEY),
        ],
    )
    .await;
    let ops = operator(&env, &router, "olga", "operator").await;
    let viewer = operator(&env, &router, "vic", "viewer").await;

    // A paid order whose payload carries the buyer's e-mail and a script.
    env.create_order("con-paid", "con-user", "pro").await;
    let paid_id = new_delivery_id();
    let mut paid = payment_succeeded("con-paid", "con-user", "pro", "50");
    paid["data"]["payment"]["receiptEmail"] = "buyer@example.com".into();
    paid["data"]["note"] = "<script>alert(1)</script>".into();
    assert_eq!(ingester.send_as(&paid_id, &paid).await.status, 200);
    // Two paid short: held for review.
    for order in ["con-held-1", "con-held-2"] {
        env.create_order(order, &format!("{order}-user"), "pro")
            .await;
        let short = payment_succeeded(order, &format!("{order}-user"), "pro", "10");
        assert_eq!(ingester.send(&short).await.status, 200);
    }
    // A payment for an order nobody recorded: parked.
    let orphan_id = new_delivery_id();
    let mut orphan = payment_succeeded("con-orphan", "ignored", "pro", "50");
    orphan["data"].as_object_mut().unwrap().remove("metadata");
    assert_eq!(ingester.send_as(&orphan_id, &orphan).await.status, 200);
    env.wait_all_processed(4, WAIT).await;

    // Find a delivery by its svix-id; its page masks the e-mail and
    // escapes the script.
    let found = ops.get(&router, &format!("/search?q={paid_id}")).await;
    assert_eq!(found.status, StatusCode::SEE_OTHER, "{found:?}");
    let delivery_path = found.location().to_owned();
    assert!(delivery_path.starts_with("/deliveries/"), "{delivery_path}");
    let shown = ops.get(&router, &delivery_path).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert!(!shown.body.contains("buyer@example.com"), "masked");
    assert!(shown.body.contains("b•••@•••.com"), "{}", shown.body);
    assert!(!shown.body.contains("<script>alert"), "escaped");
    assert!(shown.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(
        shown.body.contains("purchase_grant") && shown.body.contains("3300"),
        "lineage"
    );
    assert!(
        shown.body.contains("/orders?id=con-paid"),
        "lineage links the order"
    );
    // Revealing is allowed to a viewer, and audited.
    let revealed = viewer
        .post(&router, &format!("{delivery_path}/reveal"), &[])
        .await;
    assert_eq!(revealed.status, StatusCode::OK);
    assert!(revealed.body.contains("buyer@example.com"));
    assert!(!revealed.body.contains("<script>alert"), "still escaped");
    assert_eq!(
        env.count("select count(*) from operator_actions where command = 'console reveal' and operator = 'vic'").await,
        1
    );

    // Every page answers; search finds orders, users and PaymentIntents.
    for path in [
        "/",
        "/deliveries",
        "/deliveries?outcome=granted&provider=crossmint&type=orders.payment.succeeded",
        "/deliveries?from=2020-01-01T00:00&to=2999-01-01T00:00",
        "/held",
        "/parked",
        "/rejected",
        "/control",
        "/audit",
        "/users",
        "/users?id=con-user",
        "/orders?id=con-paid",
    ] {
        let page = viewer.get(&router, path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        assert!(page.body.contains("vic (viewer)"), "{path}");
    }
    let listed = viewer.get(&router, "/deliveries?outcome=parked").await;
    assert!(
        listed.body.contains(&orphan_id) && !listed.body.contains(&paid_id),
        "{}",
        listed.body
    );
    assert_eq!(
        viewer.get(&router, "/search?q=con-paid").await.location(),
        "/orders?id=con-paid"
    );
    assert_eq!(
        viewer.get(&router, "/search?q=con-user").await.location(),
        "/users?id=con-user"
    );
    let nothing = viewer.get(&router, "/search?q=nothing-like-it").await;
    assert!(
        nothing.body.contains("Nothing is recorded under"),
        "{}",
        nothing.body
    );

    // Nonsense gets a clear refusal with a code.
    for (path, code) in [
        ("/deliveries?provider=paypal", "INVALID_FILTER"),
        ("/deliveries?from=yesterday", "INVALID_FILTER"),
        ("/deliveries?type=%3Cscript%3E", "INVALID_FILTER"),
        ("/deliveries?before=-1", "INVALID_FILTER"),
        ("/deliveries/abc", "INVALID_ROW"),
        ("/search?q=", "EMPTY_SEARCH"),
        ("/users?id=x&before=zz", "INVALID_FILTER"),
    ] {
        let refused = viewer.get(&router, path).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(refused.body.contains(code), "{path}: {}", refused.body);
        assert!(!refused.body.contains("<script>"), "{path}");
    }
    let long = format!("/search?q={}", "x".repeat(300));
    assert!(viewer.get(&router, &long).await.body.contains("INVALID_ID"));
    assert_eq!(
        viewer.get(&router, "/deliveries/99999999").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        viewer.get(&router, "/orders?id=none").await.status,
        StatusCode::NOT_FOUND
    );

    // A viewer looks, never acts.
    for (path, form) in [
        (
            "/control",
            vec![("paused", "true"), ("reason", "viewer tries")],
        ),
        (
            "/held/resolve",
            vec![
                ("order", "con-held-1"),
                ("verdict", "release"),
                ("reason", "x"),
            ],
        ),
        (
            "/users/grant",
            vec![("user", "con-user"), ("credits", "5"), ("reason", "x")],
        ),
        (
            "/orders/revoke",
            vec![("order", "con-paid"), ("reason", "x")],
        ),
        (&*format!("{delivery_path}/redrive"), vec![]),
        (
            "/jobs",
            vec![("outcome", "parked"), ("cap", "10"), ("reason", "x")],
        ),
        ("/jobs/1/cancel", vec![]),
    ] {
        let refused = viewer.post(&router, path, &form).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}");
        assert!(
            refused.body.contains("ROLE_FORBIDDEN"),
            "{path}: {}",
            refused.body
        );
    }
    // No state change without the session's CSRF token, or from another site.
    let forged = send(
        &router,
        post(
            "/control",
            Some(&ops.cookie),
            &[("paused", "true"), ("reason", "forged")],
        ),
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.body.contains("CSRF_MISMATCH"));
    let wrong_token = send(
        &router,
        post(
            "/control",
            Some(&ops.cookie),
            &[("csrf", &viewer.csrf), ("paused", "true"), ("reason", "x")],
        ),
    )
    .await;
    assert!(
        wrong_token.body.contains("CSRF_MISMATCH"),
        "another session's token"
    );
    let mut cross = post(
        "/control",
        Some(&ops.cookie),
        &[("csrf", &ops.csrf), ("paused", "true"), ("reason", "x")],
    );
    cross
        .headers_mut()
        .insert("sec-fetch-site", "cross-site".parse().unwrap());
    assert!(
        send(&router, cross)
            .await
            .body
            .contains("CROSS_SITE_REQUEST")
    );
    let mut other_origin = post(
        "/control",
        Some(&ops.cookie),
        &[("csrf", &ops.csrf), ("paused", "true"), ("reason", "x")],
    );
    other_origin
        .headers_mut()
        .insert(header::ORIGIN, "https://evil.example".parse().unwrap());
    assert!(
        send(&router, other_origin)
            .await
            .body
            .contains("CROSS_SITE_REQUEST")
    );
    assert_eq!(
        env.count("select count(*) from processing_control where paused")
            .await,
        0,
        "nothing changed"
    );

    // Pause and resume, audited under the operator's name.
    let no_reason = ops
        .post(&router, "/control", &[("paused", "true"), ("reason", " ")])
        .await;
    assert!(no_reason.body.contains("REASON_REQUIRED"));
    let paused = ops
        .post(
            &router,
            "/control",
            &[("paused", "true"), ("reason", "console test")],
        )
        .await;
    assert_eq!(paused.status, StatusCode::OK, "{}", paused.body);
    assert!(paused.body.contains("PAUSED"), "{}", paused.body);
    assert_eq!(
        env.count("select count(*) from processing_control where paused and changed_by = 'olga'")
            .await,
        1
    );
    let resumed = ops
        .post(
            &router,
            "/control",
            &[("paused", "false"), ("reason", "done")],
        )
        .await;
    assert!(resumed.body.contains("RESUMED"), "{}", resumed.body);

    // One provider alone.
    let stripe_paused = ops
        .post(
            &router,
            "/control",
            &[
                ("scope", "stripe"),
                ("paused", "true"),
                ("reason", "stripe incident"),
            ],
        )
        .await;
    assert!(
        stripe_paused.body.contains("stripe PAUSED by olga"),
        "{}",
        stripe_paused.body
    );
    assert_eq!(
        env.count("select count(*) from processing_control where paused_providers = '{stripe}' and not paused").await,
        1
    );
    let stripe_resumed = ops
        .post(
            &router,
            "/control",
            &[
                ("scope", "stripe"),
                ("paused", "false"),
                ("reason", "fixed"),
            ],
        )
        .await;
    assert!(
        stripe_resumed.body.contains("stripe RESUMED"),
        "{}",
        stripe_resumed.body
    );
    let bad_scope = ops
        .post(
            &router,
            "/control",
            &[("scope", "paypal"), ("paused", "true"), ("reason", "x")],
        )
        .await;
    assert!(bad_scope.body.contains("INVALID_SWITCH"));

    // Held orders: release grants once, reject grants nothing.
    let held = ops.get(&router, "/held").await;
    assert!(
        held.body.contains("con-held-1") && held.body.contains("the package costs"),
        "{}",
        held.body
    );
    let asked = viewer.get(&router, "/held/provider?order=con-held-1").await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.body);
    assert!(
        asked.body.contains("Crossmint has no order con-held-1"),
        "{}",
        asked.body
    );
    assert_eq!(
        crossmint.lookups(),
        vec!["con-held-1".to_owned()],
        "asked on demand, once"
    );
    let released = ops
        .post(
            &router,
            "/held/resolve",
            &[
                ("order", "con-held-1"),
                ("verdict", "release"),
                ("reason", "paid the rest by wire"),
            ],
        )
        .await;
    assert!(
        released.body.contains("granted 3300 credits"),
        "{}",
        released.body
    );
    assert_eq!(env.balance("con-held-1-user").await, 3300);
    let twice = ops
        .post(
            &router,
            "/held/resolve",
            &[
                ("order", "con-held-1"),
                ("verdict", "release"),
                ("reason", "again"),
            ],
        )
        .await;
    assert!(twice.body.contains("ORDER_NOT_HELD"), "{}", twice.body);
    assert_eq!(env.balance("con-held-1-user").await, 3300);
    let rejected = ops
        .post(
            &router,
            "/held/resolve",
            &[
                ("order", "con-held-2"),
                ("verdict", "reject"),
                ("reason", "card testing"),
            ],
        )
        .await;
    assert!(
        rejected.body.contains("nothing granted"),
        "{}",
        rejected.body
    );
    assert_eq!(env.balance("con-held-2-user").await, 0);

    // A grant by hand asks first, then grants once even if confirmed twice.
    let asked = ops
        .post(
            &router,
            "/users/grant",
            &[
                ("user", "con-user"),
                ("credits", "25"),
                ("reason", "goodwill"),
            ],
        )
        .await;
    assert!(asked.body.contains("Yes, grant"), "{}", asked.body);
    assert_eq!(
        env.balance("con-user").await,
        3300,
        "nothing before the confirmation"
    );
    let key = asked.input("key").unwrap();
    for _ in 0..2 {
        let granted = ops
            .post(
                &router,
                "/users/grant",
                &[
                    ("user", "con-user"),
                    ("credits", "25"),
                    ("reason", "goodwill"),
                    ("key", &key),
                ],
            )
            .await;
        assert_eq!(granted.status, StatusCode::OK, "{}", granted.body);
    }
    assert_eq!(env.balance("con-user").await, 3325);
    let bad_credits = ops
        .post(
            &router,
            "/users/grant",
            &[("user", "con-user"), ("credits", "1.5"), ("reason", "x")],
        )
        .await;
    assert!(bad_credits.body.contains("INVALID_CREDITS"));

    // A revoke asks first, then takes back the order's grant.
    let asked = ops
        .post(
            &router,
            "/orders/revoke",
            &[("order", "con-paid"), ("reason", "fraud")],
        )
        .await;
    assert!(asked.body.contains("Yes, revoke"));
    assert_eq!(env.balance("con-user").await, 3325);
    let revoked = ops
        .post(
            &router,
            "/orders/revoke",
            &[
                ("order", "con-paid"),
                ("reason", "fraud"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
    assert_eq!(env.balance("con-user").await, 25);

    // Redrive a parked delivery once its order exists.
    env.create_order("con-orphan", "con-orphan-user", "pro")
        .await;
    let parked = ops.get(&router, "/parked").await;
    assert!(parked.body.contains(&orphan_id), "{}", parked.body);
    let orphan_path = ops
        .get(&router, &format!("/search?q={orphan_id}"))
        .await
        .location()
        .to_owned();
    // Its attempts, persisted: the retry, then the parking, each with its reason.
    let orphan_page = ops.get(&router, &orphan_path).await;
    let attempts = orphan_page
        .body
        .split("Processing attempts")
        .nth(1)
        .unwrap_or_default();
    assert!(
        attempts.contains("outcome-retry") && attempts.contains("outcome-parked"),
        "{}",
        orphan_page.body
    );
    assert!(attempts.contains("gave up after 2 attempts"), "{attempts}");
    let redriven = ops
        .post(&router, &format!("{orphan_path}/redrive"), &[])
        .await;
    assert!(
        redriven
            .body
            .contains("was parked; sent again -&gt; granted"),
        "{}",
        redriven.body
    );
    assert_eq!(env.balance("con-orphan-user").await, 3300);

    // Everything parked, redriven as a background job with its progress.
    let second_orphan_id = new_delivery_id();
    let mut second_orphan = payment_succeeded("con-orphan-2", "ignored", "pro", "50");
    second_orphan["data"]
        .as_object_mut()
        .unwrap()
        .remove("metadata");
    assert_eq!(
        ingester
            .send_as(&second_orphan_id, &second_orphan)
            .await
            .status,
        200
    );
    env.wait_for_count(
        "select count(*) from webhook_deliveries where outcome = 'parked'",
        1,
        WAIT,
    )
    .await;
    env.create_order("con-orphan-2", "con-orphan-2-user", "pro")
        .await;
    let bad_cap = ops
        .post(
            &router,
            "/jobs",
            &[("outcome", "parked"), ("cap", "0"), ("reason", "x")],
        )
        .await;
    assert!(bad_cap.body.contains("INVALID_CAP"), "{}", bad_cap.body);
    let started = ops
        .post(
            &router,
            "/jobs",
            &[
                ("outcome", "parked"),
                ("cap", "10"),
                ("reason", "orders restored"),
            ],
        )
        .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let job_path = started.location().to_owned();
    let job = eventually(WAIT, async || {
        let page = ops.get(&router, &job_path).await;
        seen(
            page.body.clone(),
            page.body.contains("<dd id=\"job-state\">done"),
        )
    })
    .await;
    assert!(job.contains("<dd id=\"job-sent\">1</dd>"), "{job}");
    assert!(!job.contains("hx-trigger"), "a finished job is not polled");
    eventually(WAIT, async || {
        let balance = env.balance("con-orphan-2-user").await;
        seen(balance, balance == 3300)
    })
    .await;
    assert_eq!(
        env.count("select count(*) from operator_actions where command = 'console replay job batch' and result -> 'sentRows' is not null")
            .await,
        1,
        "which deliveries went out is audited"
    );
    // Cancelling a finished job changes nothing, and says so.
    let cancel_done = ops.post(&router, &format!("{job_path}/cancel"), &[]).await;
    assert_eq!(cancel_done.status, StatusCode::SEE_OTHER);
    assert_eq!(
        env.count("select count(*) from operator_actions where command = 'console replay job cancel' and result ->> 'changed' = 'false'")
            .await,
        1
    );
    assert!(ops.get(&router, "/parked").await.body.contains(&job_path));
    // The cap: a filter matching every Crossmint delivery, capped at 2,
    // looks at 2 (processed ones are never sent again).
    let capped = ops
        .post(
            &router,
            "/jobs",
            &[
                ("provider", "crossmint"),
                ("cap", "2"),
                ("reason", "cap test"),
            ],
        )
        .await;
    let capped_path = capped.location().to_owned();
    let capped_page = eventually(WAIT, async || {
        let page = ops.get(&router, &capped_path).await;
        seen(
            page.body.clone(),
            page.body.contains("<dd id=\"job-state\">done"),
        )
    })
    .await;
    assert!(
        capped_page.contains("<dd id=\"job-matched\">2 of at most 2</dd>"),
        "{capped_page}"
    );
    assert!(
        capped_page.contains("<dd id=\"job-sent\">0</dd>"),
        "{capped_page}"
    );
    // A cancel asked of a running job is what its next batch reads; one
    // whose console stopped (no heartbeat for minutes) is cancelled at once.
    let mut tx = env.pool.begin().await.unwrap();
    let running =
        ledgerhook_store::replay_jobs::create(&mut tx, "olga", "t", &serde_json::json!({}), 5)
            .await
            .unwrap();
    assert!(
        ledgerhook_store::replay_jobs::request_cancel(&mut tx, running, 120)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    assert!(
        ledgerhook_store::replay_jobs::progress(&env.pool, running, 1, 1, 0)
            .await
            .unwrap()
    );
    let busy = ops
        .post(
            &router,
            "/jobs",
            &[
                ("outcome", "parked"),
                ("cap", "10"),
                ("reason", "while another runs"),
            ],
        )
        .await;
    assert_eq!(busy.status, StatusCode::CONFLICT, "{}", busy.body);
    assert!(busy.body.contains("JOB_RUNNING"));
    sqlx::query(
        "update replay_jobs set heartbeat_at = now() - interval '10 minutes' where id = $1",
    )
    .bind(running)
    .execute(&env.pool)
    .await
    .unwrap();
    let stale_cancel = ops
        .post(&router, &format!("/jobs/{running}/cancel"), &[])
        .await;
    assert_eq!(stale_cancel.status, StatusCode::SEE_OTHER);
    assert!(
        ops.get(&router, &format!("/jobs/{running}"))
            .await
            .body
            .contains("<dd id=\"job-state\">cancelled")
    );

    // Refused requests: a burst of forged signatures. At most 5 are noted
    // (the rest counted), 3 kept; the console shows their headers, never
    // their bodies.
    let forged_body = br#"{"type":"orders.payment.succeeded","note":"BODY-MARKER"}"#.to_vec();
    for _ in 0..12 {
        let mut headers: Vec<(&str, String)> = ledgerhook_tests::webhook::svix_headers(
            &ledgerhook_providers::svix::SigningSecret::parse(
                "whsec_ZmFrZS1mb3JnZXJzLXNlY3JldC0wMTIzNDU2Nzg5",
            )
            .unwrap(),
            &new_delivery_id(),
            &forged_body,
        )
        .to_vec();
        headers.push(("x-forwarded-for", "203.0.113.7".to_owned()));
        let answer = ingester.send_raw(&headers, forged_body.clone()).await;
        assert_eq!(answer.status, 401);
    }
    let kept =
        "select count(*) from rejected_requests where reason = 'SIGNATURE_VERIFICATION_FAILED'";
    env.wait_for_count(kept, 3, WAIT).await;
    let noted = env
        .count("select next from rejected_request_counters")
        .await;
    assert!(
        (3..=6).contains(&noted),
        "noted {noted} of 12 at 5 a second"
    );
    ingester
        .service
        .metrics_once(
            "ledgerhook_rejections_noted_total",
            &["result=\"rate_limited\""],
            6.0,
        )
        .await;
    let page = ops
        .get(&router, "/rejected?reason=SIGNATURE_VERIFICATION_FAILED")
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("svix-signature") && page.body.contains("203.0.113.7"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("BODY-MARKER"), "a body shown");
    assert!(
        ops.get(&router, "/rejected?reason=drop%20table")
            .await
            .body
            .contains("INVALID_FILTER")
    );

    // The audit trail shows each action, and the order's and user's pages theirs.
    let audit = ops.get(&router, "/audit").await;
    for command in [
        "pause",
        "resume",
        "release",
        "reject",
        "grant",
        "revoke",
        "replay",
        "console reveal",
        "console replay job",
        "console replay job batch",
        "console replay job ended",
        "console replay job cancel",
    ] {
        assert!(
            audit.body.contains(&format!("<td>{command}</td>")),
            "{command}: {}",
            audit.body
        );
    }
    let order_page = ops.get(&router, "/orders?id=con-paid").await;
    assert!(
        order_page.body.contains("<td>revoke</td>") && order_page.body.contains("fraud"),
        "{}",
        order_page.body
    );
    let user_page = ops.get(&router, "/users?id=con-user").await;
    assert!(
        user_page.body.contains("<td>grant</td>") && user_page.body.contains("goodwill"),
        "{}",
        user_page.body
    );
}
