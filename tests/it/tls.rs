//! TLS to every peer, against real TLS servers with a CA made at test time:
//! Crossmint (the fake, over HTTPS) trusted through `SSL_CERT_FILE`,
//! PostgreSQL with `sslmode=verify-full&sslrootcert=`, RabbitMQ over
//! `amqps://` with `AMQP_CA_FILE`. Nothing on the machine trusts a test's CA
//! unless the test says so, and a second CA plays the untrusted server.

use std::path::Path;
use std::time::Duration;

use ledgerhook_tests::fake_crossmint::{FAKE_API_KEY, FakeCrossmint};
use ledgerhook_tests::harness::TestEnv;
use ledgerhook_tests::own_postgres::OwnPostgres;
use ledgerhook_tests::own_rabbitmq::OwnRabbitMq;
use ledgerhook_tests::scrape;
use ledgerhook_tests::tls::{PemDir, TestCa};
use ledgerhook_tests::webhook::{payment_succeeded, price_of};
use serde_json::json;
use sqlx::Connection as _;

const WAIT: Duration = Duration::from_secs(30);

fn path(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

#[tokio::test]
async fn the_api_creates_an_order_with_crossmint_over_https_trusting_the_ca_in_ssl_cert_file() {
    let env = TestEnv::new().await.unwrap();
    let ca = TestCa::new("crossmint test CA").unwrap();
    let cert = ca.issue_server_cert().unwrap();
    let crossmint = FakeCrossmint::start_tls(cert.rustls_config().unwrap())
        .await
        .unwrap();
    let files = PemDir::new().unwrap();
    let ca_file = files.ca_file("ca", &ca).unwrap();
    assert!(crossmint.api_url.starts_with("https://127.0.0.1:"));
    let api = env
        .start_api(&crossmint.api_url, &[("SSL_CERT_FILE", path(&ca_file))])
        .await
        .unwrap();

    let answer = api
        .post(
            "/api/payments/orders",
            Some("buyer-tls"),
            &json!({"packageId": "pro"}),
        )
        .await;

    assert_eq!(answer.status, 201, "{answer:?}");
    let order_id = answer.body["orderId"].as_str().unwrap();
    assert_eq!(crossmint.requests().len(), 1);
    assert_eq!(
        env.count(&format!(
            "select count(*) from payment_orders where provider_order_id = '{order_id}' and user_id = 'buyer-tls'"
        ))
        .await,
        1
    );
}

#[tokio::test]
async fn an_untrusted_crossmint_certificate_is_502_and_the_log_says_why_without_the_key() {
    let env = TestEnv::new().await.unwrap();
    let trusted = TestCa::new("the CA the API trusts").unwrap();
    let other = TestCa::new("a CA nobody trusts").unwrap();
    let crossmint =
        FakeCrossmint::start_tls(other.issue_server_cert().unwrap().rustls_config().unwrap())
            .await
            .unwrap();
    let files = PemDir::new().unwrap();
    let ca_file = files.ca_file("trusted", &trusted).unwrap();
    let api = env
        .start_api(&crossmint.api_url, &[("SSL_CERT_FILE", path(&ca_file))])
        .await
        .unwrap();

    let answer = api
        .post(
            "/api/payments/orders",
            Some("buyer-tls"),
            &json!({"packageId": "pro"}),
        )
        .await;

    assert_eq!(answer.status, 502, "{answer:?}");
    assert_eq!(answer.body["code"], "CROSSMINT_ERROR");
    assert!(
        crossmint.requests().is_empty(),
        "no request got past the handshake"
    );
    assert_eq!(env.count("select count(*) from payment_orders").await, 0);
    let line = api.service.log_line(&["Crossmint call failed"], WAIT).await;
    assert!(line.contains("UnknownIssuer"), "{line}");
    let log = api.service.log();
    assert!(
        !log.contains(FAKE_API_KEY),
        "the API key never reaches the log"
    );
    let metrics = api.service.metrics().await;
    assert_eq!(
        scrape::sum(
            &metrics,
            "ledgerhook_crossmint_failures_total",
            &["reason=\"unreachable\""]
        ),
        1.0
    );
}

#[tokio::test]
async fn the_ingester_and_worker_reach_postgresql_over_tls_under_sslmode_verify_full() {
    let ca = TestCa::new("postgres test CA").unwrap();
    let postgres = OwnPostgres::start_with_tls(&ca.issue_server_cert().unwrap()).unwrap();
    let files = PemDir::new().unwrap();
    let ca_file = files.ca_file("ca", &ca).unwrap();
    let admin = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        postgres.url("postgres"),
        path(&ca_file)
    );
    let env = TestEnv::on(&admin).await.unwrap();
    assert!(
        env.database_url
            .contains("sslmode=verify-full&sslrootcert=")
    );
    let ingester = env.start_ingester(&[]).await.unwrap();
    let _worker = env.start_worker(&[]).await.unwrap();
    env.create_order("tls-db-order", "tls-db-user", "pro").await;

    let answer = ingester
        .send(&payment_succeeded(
            "tls-db-order",
            "tls-db-user",
            "pro",
            &price_of("pro"),
        ))
        .await;

    assert_eq!(answer.status, 200, "{answer:?}");
    env.wait_all_processed(1, WAIT).await;
    assert_eq!(env.balance("tls-db-user").await, 3300);
    // Plain connections would be accepted too; every connection of both
    // binaries must be TLS.
    let (tls, plain): (i64, i64) = sqlx::query_as(
        "select count(distinct a.application_name) filter (where s.ssl),
                count(*) filter (where not s.ssl)
         from pg_stat_activity a join pg_stat_ssl s using (pid)
         where a.application_name in ('ledgerhook-ingester', 'ledgerhook-worker')",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!((tls, plain), (2, 0));
}

#[tokio::test]
async fn a_postgresql_certificate_from_another_ca_is_refused_under_sslmode_verify_full() {
    let ca = TestCa::new("postgres test CA").unwrap();
    let other = TestCa::new("a CA nobody trusts").unwrap();
    let postgres = OwnPostgres::start_with_tls(&ca.issue_server_cert().unwrap()).unwrap();
    let files = PemDir::new().unwrap();
    let url_trusting = |ca_file: &Path| {
        format!(
            "{}?sslmode=verify-full&sslrootcert={}",
            postgres.url("postgres"),
            path(ca_file)
        )
    };

    let right =
        sqlx::PgConnection::connect(&url_trusting(&files.ca_file("ca", &ca).unwrap())).await;
    let wrong =
        sqlx::PgConnection::connect(&url_trusting(&files.ca_file("other", &other).unwrap())).await;

    assert!(right.is_ok(), "the server's own CA is trusted: {right:?}");
    let error = wrong.expect_err("a certificate from another CA is refused");
    assert!(error.to_string().contains("UnknownIssuer"), "{error}");
}

#[tokio::test]
async fn over_amqps_a_delivery_is_granted_once_with_amqp_ca_file_and_never_published_without_it() {
    let ca = TestCa::new("rabbitmq test CA").unwrap();
    let cert = ca.issue_server_cert().unwrap();
    let files = PemDir::new().unwrap();
    let ca_file = files.ca_file("ca", &ca).unwrap();
    // One node for the whole test: it takes seconds to start.
    let broker = tokio::task::spawn_blocking(move || OwnRabbitMq::start_with_tls(&ca, &cert));
    let env = TestEnv::new().await.unwrap();
    let broker = broker.await.unwrap().unwrap();
    let amqps = broker.amqps_url().unwrap();
    let quick_relay = [
        ("OUTBOX_RELAY_GRACE_MS", "300"),
        ("OUTBOX_RELAY_INTERVAL_MS", "200"),
    ];
    let trusting = [
        ("AMQP_URL", amqps.as_str()),
        ("AMQP_CA_FILE", path(&ca_file)),
    ];
    let worker = env.start_worker(&trusting).await.unwrap();
    env.create_order("amqps-order-1", "amqps-user-1", "pro")
        .await;
    env.create_order("amqps-order-2", "amqps-user-2", "starter")
        .await;
    let paid = |n: u8, package: &str| {
        payment_succeeded(
            &format!("amqps-order-{n}"),
            &format!("amqps-user-{n}"),
            package,
            &price_of(package),
        )
    };

    // Without the CA the ingester still records and answers, but cannot
    // publish (the worker, which trusts the CA, would grant what it did).
    let untrusting = env
        .start_ingester(&[&[("AMQP_URL", amqps.as_str())][..], &quick_relay].concat())
        .await
        .unwrap();
    assert_eq!(untrusting.send(&paid(1, "pro")).await.status, 200);
    untrusting
        .service
        .log_line(&["broker unreachable", "UnknownIssuer"], WAIT)
        .await;
    assert_eq!(env.count("select count(*) from delivery_outbox").await, 1);
    assert_eq!(env.balance("amqps-user-1").await, 0);
    drop(untrusting);

    // With it, the waiting delivery is relayed and a new one published at once.
    let ingester = env
        .start_ingester(&[&trusting[..], &quick_relay].concat())
        .await
        .unwrap();
    assert_eq!(ingester.send(&paid(2, "starter")).await.status, 200);

    env.wait_all_processed(2, WAIT).await;
    assert_eq!(env.balance("amqps-user-1").await, 3300);
    assert_eq!(env.balance("amqps-user-2").await, 500);
    assert_eq!(env.count("select count(*) from credit_ledger").await, 2);
    assert_eq!(env.count("select count(*) from delivery_outbox").await, 0);
    let metrics = worker
        .metrics_once("ledgerhook_grants_total", &[], 2.0)
        .await;
    assert_eq!(scrape::sum(&metrics, "ledgerhook_grants_total", &[]), 2.0);
}

#[tokio::test]
async fn an_unusable_amqp_ca_file_stops_start_up_naming_the_variable() {
    let env = TestEnv::new().await.unwrap();
    let files = PemDir::new().unwrap();
    let server = TestCa::new("any CA").unwrap().issue_server_cert().unwrap();
    let with_key = files
        .text_file(
            "bundle.pem",
            &format!("{}{}", server.cert_pem, server.key_pem),
        )
        .unwrap();
    let key_line = server.key_pem.lines().nth(1).unwrap();
    let cases = [
        ("/nonexistent/ca.pem", "cannot be read"),
        (path(&with_key), "holds a private key"),
    ];

    for (file, why) in cases {
        let extra = [("AMQP_CA_FILE", file)];
        let refused = [
            env.start_ingester(&extra).await.err(),
            env.start_worker(&extra).await.err(),
        ];
        for error in refused {
            let message = format!("{:#}", error.expect("start-up fails"));
            assert!(
                message.contains(&format!("AMQP_CA_FILE={file:?}: {why}")),
                "{message}"
            );
            assert!(!message.contains(key_line), "{message}");
        }
    }
}
