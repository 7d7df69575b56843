//! Notifications about grants: the buyer's email over a real SMTP server
//! (aiosmtpd, started by the test), the team's chat over local HTTP
//! endpoints; and the rule they live by: a notification never fails,
//! delays or rolls back a grant.
//!
//! The SMTP server is a small aiosmtpd script that writes each message it
//! accepts to a folder; it runs from a virtualenv made once under
//! `target/` on first use (`python3 -m venv`, `pip install aiosmtpd`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ledgerhook_domain::find_package;
use ledgerhook_domain::format_credits;
use ledgerhook_tests::eventually::{eventually, seen};
use ledgerhook_tests::harness::TestEnv;
use ledgerhook_tests::python_venv;
use ledgerhook_tests::tls::{PemDir, TestCa};
use ledgerhook_tests::webhook::{payment_succeeded, price_of};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
const AIOSMTPD: &str = "aiosmtpd==1.4.6";

/// Saves each accepted message as `<n>.eml` (the envelope's recipients in
/// an `X-Rcpt-To` line first), refuses recipients named `refused...` for
/// good (550), and answers a message to `held...` only once the test has
/// created the file `release` (so the test can act while that send is
/// certainly in flight); `plain`, `starttls` (required) or `smtps`.
///
/// The port: the script binds port 0 at once and writes the port it got to
/// the file `port`, but listens only once the test creates `listen`. So the
/// port is the server's from the start (no other test can take it while
/// this one pretends the server is down), and until `listen` a connection
/// is refused, as by a mail server that is down.
const SMTP_SINK: &str = r#"
import asyncio, os, socket, ssl, sys
from aiosmtpd.smtp import SMTP

class Save:
    def __init__(self, folder):
        self.folder, self.count = folder, 0
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("refused"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"
    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        name = os.path.join(self.folder, f"{os.getpid()}-{self.count}.eml")
        with open(name + ".tmp", "wb") as f:
            f.write(b"X-Rcpt-To: " + ",".join(envelope.rcpt_tos).encode() + b"\r\n")
            f.write(envelope.original_content)
        os.rename(name + ".tmp", name)
        if any(r.startswith("held") for r in envelope.rcpt_tos):
            while not os.path.exists(os.path.join(self.folder, "release")):
                await asyncio.sleep(0.02)
        return "250 OK"

async def main():
    folder, mode = sys.argv[1], sys.argv[2]
    context = None
    if mode != "plain":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(sys.argv[3], sys.argv[4])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port_file = os.path.join(folder, "port")
    with open(port_file + ".tmp", "w") as f:
        f.write(str(sock.getsockname()[1]))
    os.rename(port_file + ".tmp", port_file)
    while not os.path.exists(os.path.join(folder, "listen")):
        await asyncio.sleep(0.02)
    handler = Save(folder)
    loop = asyncio.get_running_loop()
    if mode == "smtps":
        server = await loop.create_server(lambda: SMTP(handler, hostname="localhost"), sock=sock, ssl=context)
    else:
        server = await loop.create_server(
            lambda: SMTP(handler, hostname="localhost", tls_context=context, require_starttls=context is not None),
            sock=sock)
    await server.serve_forever()

asyncio.run(main())
"#;

/// The virtualenv's python, made once per test run.
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| python_venv::venv_with("aiosmtpd-venv", AIOSMTPD).join("bin/python"))
}

/// A real SMTP server (see [`SMTP_SINK`]) on a port it holds from the
/// start, listening once the test says so; the messages it accepted, read
/// from its folder.
struct SmtpSink {
    port: u16,
    /// Holds the script and the messages; removed on drop.
    _folder: PemDir,
    script: PathBuf,
    child: Child,
}

impl SmtpSink {
    /// Not started yet: the port is the server's, but nothing listens.
    async fn new(mode: &str, tls_files: &[&Path]) -> Self {
        let folder = PemDir::new().unwrap();
        let script = folder.text_file("smtp_sink.py", SMTP_SINK).unwrap();
        let dir = script.parent().unwrap().to_path_buf();
        let child = Command::new(python())
            .arg(&script)
            .arg(&dir)
            .arg(mode)
            .args(tls_files)
            .stdin(Stdio::null())
            .spawn()
            .expect("starting the SMTP server");
        let port_file = dir.join("port");
        let port = eventually(WAIT, async || {
            std::fs::read_to_string(&port_file)
                .map_err(|e| format!("the SMTP server's port file: {e}"))
                .and_then(|text| text.trim().parse::<u16>().map_err(|e| e.to_string()))
        })
        .await;
        Self {
            port,
            _folder: folder,
            script,
            child,
        }
    }

    fn dir(&self) -> PathBuf {
        self.script.parent().unwrap().to_path_buf()
    }

    /// Lets a message to `held...` be answered.
    fn release(&self) {
        std::fs::write(self.dir().join("release"), "").unwrap();
    }

    async fn start(&mut self) {
        std::fs::write(self.dir().join("listen"), "").unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        eventually(WAIT, async || {
            tokio::net::TcpStream::connect(addr)
                .await
                .map(drop)
                .map_err(|e| format!("SMTP server on {addr}: {e}"))
        })
        .await;
    }

    /// Every message received so far: its headers (and the envelope's
    /// recipients as `x-rcpt-to`) by lower-case name, and its body.
    fn mails(&self) -> Vec<Mail> {
        let mut mails = Vec::new();
        for entry in std::fs::read_dir(self.dir()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "eml") {
                mails.push(Mail::parse(&std::fs::read_to_string(path).unwrap()));
            }
        }
        mails
    }

    async fn wait_for_mails(&self, count: usize) -> Vec<Mail> {
        eventually(WAIT, async || {
            let mails = self.mails();
            seen(mails.len(), mails.len() == count)
                .map(|_| mails)
                .map_err(|n| format!("{n} mails, not {count}"))
        })
        .await
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Mail {
    headers: Vec<(String, String)>,
    body: String,
}

impl Mail {
    fn parse(text: &str) -> Self {
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = headers.last_mut() {
                    value.push_str(line.trim_start());
                }
            } else if let Some((name, value)) = line.split_once(':') {
                headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        Self {
            headers,
            body: body.replace("=\r\n", "").replace("\r\n", "\n"),
        }
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// A chat service's webhook played by the test: answers every POST with
/// `status` (which the test may change) and `answer`, keeps the bodies.
#[derive(Clone)]
struct ChatEndpoint {
    url: String,
    received: Arc<Mutex<Vec<Value>>>,
    status: Arc<Mutex<StatusCode>>,
}

impl ChatEndpoint {
    async fn start(status: StatusCode, answer: Value) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(Mutex::new(status));
        let answering = status.clone();
        let app = axum::Router::new()
            .route(
                "/hook/secret-token",
                axum::routing::post(
                    async move |State(received): State<Arc<Mutex<Vec<Value>>>>,
                                Json(body): Json<Value>| {
                        received.lock().unwrap().push(body);
                        let status = *answering.lock().unwrap();
                        (status, Json(answer.clone()))
                    },
                ),
            )
            .with_state(received.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/hook/secret-token",
            listener.local_addr().unwrap()
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            received,
            status,
        }
    }

    fn answer_with(&self, status: StatusCode) {
        *self.status.lock().unwrap() = status;
    }

    fn received(&self) -> Vec<Value> {
        self.received.lock().unwrap().clone()
    }
}

/// Crossmint's payment event with the buyer's receipt address.
fn paid_with_email(order_id: &str, user_id: &str, package: &str, email: &str) -> Value {
    let mut body = payment_succeeded(order_id, user_id, package, &price_of(package));
    body["data"]["payment"]["receiptEmail"] = json!(email);
    body
}

fn total_credits(package: &str) -> i64 {
    find_package(package).unwrap().total_credits()
}

/// The notifier's settings for a plain SMTP server on `port`, retrying
/// quickly so a test does not wait out production's backoff.
fn smtp_env(url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("NOTIFY_SMTP_URL", url.to_owned()),
        (
            "NOTIFY_EMAIL_FROM",
            "Credits <credits@shop.example>".to_owned(),
        ),
        ("NOTIFY_RETRY_INITIAL_MS", "100".to_owned()),
        ("NOTIFY_RETRY_MAX_MS", "300".to_owned()),
        ("NOTIFY_POLL_MS", "50".to_owned()),
        ("NOTIFY_SEND_TIMEOUT_MS", "5000".to_owned()),
    ]
}

fn pairs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn a_grant_mails_the_buyer_once_with_its_credits_and_the_notification_id() {
    let env = TestEnv::new().await.unwrap();
    let mut smtp = SmtpSink::new("plain", &[]).await;
    smtp.start().await;
    let settings = smtp_env(&format!("smtp://127.0.0.1:{}", smtp.port));
    let ingester = env.start_ingester(&[]).await.unwrap();
    let _worker = env.start_worker(&pairs(&settings)).await.unwrap();
    let notifier = env.start_notifier(&pairs(&settings)).await.unwrap();

    let with_email = paid_with_email("cm-mail-1", "user-mail-1", "pro", "buyer@example.com");
    let without_email = payment_succeeded("cm-mail-2", "user-mail-2", "vip", &price_of("vip"));
    assert_eq!(ingester.send(&with_email).await.status, 200);
    assert_eq!(ingester.send(&without_email).await.status, 200);
    env.wait_all_processed(2, WAIT).await;

    let mails = smtp.wait_for_mails(1).await;
    let mail = &mails[0];
    let id: uuid::Uuid = sqlx::query_scalar(
        "select n.id from notifications n join payment_orders o on o.id = n.order_id
         where o.provider_order_id = 'cm-mail-1' and n.channel = 'email'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    let credits = format_credits(total_credits("pro"));
    assert_eq!(mail.header("message-id"), format!("<{id}@ledgerhook>"));
    assert_eq!(mail.header("x-rcpt-to"), "buyer@example.com");
    assert_eq!(mail.header("to"), "buyer@example.com");
    assert_eq!(
        mail.header("subject"),
        format!("Your {credits} credits have arrived")
    );
    assert!(
        mail.body.contains(&format!("{} USDT", price_of("pro"))),
        "{}",
        mail.body
    );
    env.wait_for_count(
        "select count(*) from notifications where sent_at is not null and attempts = 1",
        1,
        WAIT,
    )
    .await;
    // Sent is recorded, so no notifier takes it again: still one mail after
    // the notifier has looked at the outbox five more times.
    let page = notifier
        .metrics_once("ledgerhook_notifications_total", &["outcome=\"sent\""], 1.0)
        .await;
    assert_eq!(
        ledgerhook_tests::scrape::sum(&page, "ledgerhook_notifications_total", &[]),
        1.0
    );
    let claims = ledgerhook_tests::scrape::sum(&page, "ledgerhook_notifier_claims_total", &[]);
    notifier
        .metrics_once("ledgerhook_notifier_claims_total", &[], claims + 5.0)
        .await;
    assert_eq!(smtp.mails().len(), 1, "one mail, sent once");
    // The grant without an address has no email row (and no other channel
    // is configured).
    assert_eq!(env.count("select count(*) from notifications").await, 1);
    assert_eq!(env.balance("user-mail-2").await, total_credits("vip"));
}

#[tokio::test]
async fn with_the_mail_server_down_grants_go_on_and_each_mail_arrives_once_it_is_back() {
    const GRANTS: usize = 20;
    let env = TestEnv::new().await.unwrap();
    let mut smtp = SmtpSink::new("plain", &[]).await;
    let mut settings = smtp_env(&format!("smtp://127.0.0.1:{}", smtp.port));
    settings.push(("NOTIFY_MAX_ATTEMPTS", "1000".to_owned()));
    let ingester = env.start_ingester(&[]).await.unwrap();
    let _worker = env.start_worker(&pairs(&settings)).await.unwrap();
    let notifier = env.start_notifier(&pairs(&settings)).await.unwrap();

    let started = Instant::now();
    for n in 0..GRANTS {
        let body = paid_with_email(
            &format!("cm-down-{n}"),
            &format!("user-down-{n}"),
            "starter",
            &format!("buyer{n}@example.com"),
        );
        assert_eq!(ingester.send(&body).await.status, 200);
    }
    env.wait_all_processed(GRANTS as i64, WAIT).await;
    let granted_in = started.elapsed();
    eprintln!("{GRANTS} grants with the mail server down: {granted_in:?}");

    // Every grant is complete and correct while no mail could go out...
    assert_eq!(
        env.count("select count(*) from webhook_deliveries where outcome = 'granted'")
            .await,
        GRANTS as i64
    );
    assert_eq!(
        env.count("select coalesce(sum(credits), 0)::int8 from credit_ledger")
            .await,
        GRANTS as i64 * total_credits("starter")
    );
    // ...and the notifier has been failing meanwhile, not idle.
    notifier
        .metrics_once(
            "ledgerhook_notifications_total",
            &["outcome=\"retried\""],
            1.0,
        )
        .await;
    assert!(smtp.mails().is_empty());
    assert_eq!(
        env.count("select count(*) from notifications where sent_at is null and parked_at is null")
            .await,
        GRANTS as i64
    );

    smtp.start().await;
    let mails = smtp.wait_for_mails(GRANTS).await;
    env.wait_for_count(
        "select count(*) from notifications where sent_at is not null",
        GRANTS as i64,
        WAIT,
    )
    .await;
    let mut ids: Vec<String> = mails
        .iter()
        .map(|m| m.header("message-id").to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), GRANTS, "every mail once: {ids:?}");
    let mut stored: Vec<String> =
        sqlx::query_scalar("select '<' || id || '@ledgerhook>' from notifications")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    stored.sort();
    assert_eq!(ids, stored);
    assert_eq!(smtp.mails().len(), GRANTS);
    // The ledger is as it was: nothing rolled back, nothing added.
    assert_eq!(
        env.count("select coalesce(sum(credits), 0)::int8 from credit_ledger")
            .await,
        GRANTS as i64 * total_credits("starter")
    );
}

#[tokio::test]
async fn a_chat_endpoint_answering_500_is_retried_then_parked_with_the_reason() {
    let env = TestEnv::new().await.unwrap();
    let endpoint = ChatEndpoint::start(
        StatusCode::INTERNAL_SERVER_ERROR,
        json!({"message": "down"}),
    )
    .await;
    let settings = [
        ("NOTIFY_DISCORD_WEBHOOK_URL", endpoint.url.as_str()),
        ("NOTIFY_MAX_ATTEMPTS", "3"),
        ("NOTIFY_RETRY_INITIAL_MS", "50"),
        ("NOTIFY_RETRY_MAX_MS", "100"),
        ("NOTIFY_POLL_MS", "50"),
    ];
    let ingester = env.start_ingester(&[]).await.unwrap();
    let _worker = env.start_worker(&settings).await.unwrap();
    let notifier = env.start_notifier(&settings).await.unwrap();

    let body = payment_succeeded("cm-chat-500", "user-chat-500", "pro", &price_of("pro"));
    assert_eq!(ingester.send(&body).await.status, 200);
    env.wait_all_processed(1, WAIT).await;
    env.wait_for_count(
        "select count(*) from notifications where parked_at is not null and attempts = 3
           and last_error like '%500%' and sent_at is null",
        1,
        WAIT,
    )
    .await;
    assert_eq!(endpoint.received().len(), 3, "three attempts, then parked");
    let page = notifier
        .metrics_once("ledgerhook_notifications_parked", &[], 1.0)
        .await;
    let count = |outcome: &str| {
        ledgerhook_tests::scrape::sum(
            &page,
            "ledgerhook_notifications_total",
            &["channel=\"discord\"", &format!("outcome=\"{outcome}\"")],
        )
    };
    assert_eq!(
        (count("retried"), count("parked"), count("sent")),
        (2.0, 1.0, 0.0)
    );
    // The webhook's token never reaches the row or the log.
    let error: String = sqlx::query_scalar("select last_error from notifications")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert!(!error.contains("secret-token"), "{error}");
    assert!(!notifier.log().contains("secret-token"));
    // The grant stands.
    assert_eq!(env.balance("user-chat-500").await, total_credits("pro"));

    // The operator sees why, fixes the cause, and sends it again.
    let listed = env
        .admin_run(&["--json", "notifications"], &[])
        .await
        .unwrap();
    assert_eq!(listed.code, Some(0), "{listed:?}");
    let parked = listed.json()["parked"].clone();
    assert_eq!(parked.as_array().map(Vec::len), Some(1), "{parked}");
    assert!(
        parked[0]["lastError"].as_str().unwrap().contains("500"),
        "{parked}"
    );
    let unnamed = env
        .admin_run(&["notifications", "--resend-parked", "--reason", "x"], &[])
        .await
        .unwrap();
    assert_eq!(
        unnamed.code,
        Some(2),
        "a resend needs an operator: {unnamed:?}"
    );
    endpoint.answer_with(StatusCode::NO_CONTENT);
    let resent = env
        .admin_run(
            &[
                "--operator",
                "ops",
                "notifications",
                "--resend-parked",
                "--reason",
                "discord is back",
            ],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(resent.code, Some(0), "{resent:?}");
    assert!(
        resent
            .stdout
            .contains("1 parked notifications are due again")
    );
    env.wait_for_count(
        "select count(*) from notifications where sent_at is not null and parked_at is null",
        1,
        WAIT,
    )
    .await;
    assert_eq!(endpoint.received().len(), 4, "sent once more, then done");
    assert_eq!(
        env.count(
            "select count(*) from operator_actions where command = 'notifications'
               and operator = 'ops' and result ->> 'resent' = '1'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn discord_and_feishu_each_get_the_grant_in_their_own_format() {
    let env = TestEnv::new().await.unwrap();
    let discord = ChatEndpoint::start(StatusCode::NO_CONTENT, json!(null)).await;
    let feishu = ChatEndpoint::start(StatusCode::OK, json!({"code": 0, "msg": "success"})).await;
    let settings = [
        ("NOTIFY_DISCORD_WEBHOOK_URL", discord.url.as_str()),
        ("NOTIFY_FEISHU_WEBHOOK_URL", feishu.url.as_str()),
        ("NOTIFY_POLL_MS", "50"),
    ];
    let ingester = env.start_ingester(&[]).await.unwrap();
    let _worker = env.start_worker(&settings).await.unwrap();
    let _notifier = env.start_notifier(&settings).await.unwrap();

    let body = paid_with_email("cm-chat-ok", "user-chat-ok", "vip", "buyer@example.com");
    assert_eq!(ingester.send(&body).await.status, 200);
    env.wait_for_count(
        "select count(*) from notifications where sent_at is not null",
        2,
        WAIT,
    )
    .await;
    let credits = format_credits(total_credits("vip"));
    let on_discord = format!(
        "payment received: `vip`, `{}` `USDT`, {credits} credits, user `user-chat-ok`, order `cm-chat-ok`",
        price_of("vip"),
    );
    let on_feishu = format!(
        "payment received: vip, {} USDT, {credits} credits, user user-chat-ok, order cm-chat-ok",
        price_of("vip"),
    );
    assert_eq!(
        discord.received(),
        [json!({"content": on_discord, "allowed_mentions": {"parse": []}})]
    );
    assert_eq!(
        feishu.received(),
        [json!({"msg_type": "text", "content": {"text": on_feishu}})]
    );
    // No SMTP server configured: the buyer's address writes no email row.
    assert_eq!(
        env.count("select count(*) from notifications where channel = 'email'")
            .await,
        0
    );
}

#[tokio::test]
async fn with_nothing_configured_a_grant_queues_nothing() {
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let _worker = env.start_worker(&[]).await.unwrap();
    let body = paid_with_email("cm-quiet", "user-quiet", "pro", "buyer@example.com");
    assert_eq!(ingester.send(&body).await.status, 200);
    env.wait_all_processed(1, WAIT).await;
    assert_eq!(env.balance("user-quiet").await, total_credits("pro"));
    assert_eq!(env.count("select count(*) from notifications").await, 0);
}

#[tokio::test]
async fn mail_goes_over_required_starttls_to_a_server_the_notifier_trusts() {
    let env = TestEnv::new().await.unwrap();
    let ca = TestCa::new("ledgerhook smtp test ca").unwrap();
    let cert = ca.issue_server_cert().unwrap();
    let pems = PemDir::new().unwrap();
    let ca_file = pems.ca_file("ca", &ca).unwrap();
    let cert_file = pems.text_file("cert.pem", &cert.cert_pem).unwrap();
    let key_file = pems.text_file("key.pem", &cert.key_pem).unwrap();
    let mut smtp = SmtpSink::new("starttls", &[&cert_file, &key_file]).await;
    smtp.start().await;
    let mut settings = smtp_env(&format!("smtp://localhost:{}?tls=required", smtp.port));
    settings.push(("SSL_CERT_FILE", ca_file.display().to_string()));
    let ingester = env.start_ingester(&[]).await.unwrap();
    let _worker = env.start_worker(&pairs(&settings)).await.unwrap();
    let _notifier = env.start_notifier(&pairs(&settings)).await.unwrap();

    let body = paid_with_email("cm-tls", "user-tls", "starter", "buyer@example.com");
    assert_eq!(ingester.send(&body).await.status, 200);
    let mails = smtp.wait_for_mails(1).await;
    assert_eq!(
        mails[0].header("subject"),
        format!(
            "Your {} credits have arrived",
            format_credits(total_credits("starter"))
        )
    );
}

#[tokio::test]
async fn a_mailbox_the_server_refuses_for_good_is_parked_at_once_and_the_grant_stands() {
    let env = TestEnv::new().await.unwrap();
    let mut smtp = SmtpSink::new("plain", &[]).await;
    smtp.start().await;
    let settings = smtp_env(&format!("smtp://127.0.0.1:{}", smtp.port));
    let ingester = env.start_ingester(&[]).await.unwrap();
    let _worker = env.start_worker(&pairs(&settings)).await.unwrap();
    let notifier = env.start_notifier(&pairs(&settings)).await.unwrap();

    let refused = paid_with_email("cm-refused", "user-refused", "pro", "refused@example.com");
    assert_eq!(ingester.send(&refused).await.status, 200);
    env.wait_for_count(
        "select count(*) from notifications
         where parked_at is not null and attempts = 1 and last_error like '%550%'",
        1,
        WAIT,
    )
    .await;
    let page = notifier
        .metrics_once(
            "ledgerhook_notifications_total",
            &["outcome=\"parked\""],
            1.0,
        )
        .await;
    assert_eq!(
        ledgerhook_tests::scrape::sum(
            &page,
            "ledgerhook_notifications_total",
            &["outcome=\"retried\""]
        ),
        0.0,
        "a permanent refusal is not retried"
    );
    assert!(smtp.mails().is_empty());
    assert_eq!(env.balance("user-refused").await, total_credits("pro"));
}

#[tokio::test]
async fn a_feishu_answer_of_200_with_a_nonzero_code_is_a_failure() {
    let env = TestEnv::new().await.unwrap();
    let feishu = ChatEndpoint::start(
        StatusCode::OK,
        json!({"code": 19021, "msg": "sign match fail"}),
    )
    .await;
    let settings = [
        ("NOTIFY_FEISHU_WEBHOOK_URL", feishu.url.as_str()),
        ("NOTIFY_MAX_ATTEMPTS", "2"),
        ("NOTIFY_RETRY_INITIAL_MS", "50"),
        ("NOTIFY_RETRY_MAX_MS", "50"),
        ("NOTIFY_POLL_MS", "50"),
    ];
    let ingester = env.start_ingester(&[]).await.unwrap();
    let _worker = env.start_worker(&settings).await.unwrap();
    let _notifier = env.start_notifier(&settings).await.unwrap();

    let body = payment_succeeded("cm-feishu", "user-feishu", "starter", &price_of("starter"));
    assert_eq!(ingester.send(&body).await.status, 200);
    env.wait_for_count(
        "select count(*) from notifications
         where channel = 'feishu' and parked_at is not null and attempts = 2
           and last_error like '%19021%'",
        1,
        WAIT,
    )
    .await;
    assert_eq!(feishu.received().len(), 2);
}

#[tokio::test]
async fn a_notifier_killed_between_sending_and_recording_sends_again_with_the_same_message_id() {
    let env = TestEnv::new().await.unwrap();
    let mut smtp = SmtpSink::new("plain", &[]).await;
    smtp.start().await;
    let mut settings = smtp_env(&format!("smtp://127.0.0.1:{}", smtp.port));
    // One row a round and a send timeout far longer than the test: the
    // held send cannot time out on its own, and the lease is 60 s + 10 s.
    settings.retain(|(k, _)| *k != "NOTIFY_SEND_TIMEOUT_MS");
    settings.push(("NOTIFY_SEND_TIMEOUT_MS", "60000".to_owned()));
    settings.push(("NOTIFY_BATCH_SIZE", "1".to_owned()));
    settings.push(("NOTIFY_CONCURRENCY", "1".to_owned()));
    let ingester = env.start_ingester(&[]).await.unwrap();
    let _worker = env.start_worker(&pairs(&settings)).await.unwrap();
    let mut notifier = env.start_notifier(&pairs(&settings)).await.unwrap();

    let body = paid_with_email("cm-crash", "user-crash", "vip", "held@example.com");
    assert_eq!(ingester.send(&body).await.status, 200);
    // The server has the message and holds its answer until released: the
    // notifier is killed with the send surely in flight.
    smtp.wait_for_mails(1).await;
    notifier.kill();
    assert_eq!(
        env.count(
            "select count(*) from notifications where sent_at is null and attempts = 0
               and next_attempt_at between now() + interval '50 seconds'
                                       and now() + interval '70 seconds'"
        )
        .await,
        1,
        "killed before it could record the send, the row leased for one round (60 s) + 10 s"
    );
    // The lease would bring the row back after 70 s; the test expires it
    // rather than wait it out.
    sqlx::query("update notifications set next_attempt_at = now()")
        .execute(&env.pool)
        .await
        .unwrap();
    smtp.release();

    notifier.restart().await.unwrap();
    let mails = smtp.wait_for_mails(2).await;
    env.wait_for_count(
        "select count(*) from notifications where sent_at is not null",
        1,
        WAIT,
    )
    .await;
    // At least once, honestly: a second copy, recognisably the same message.
    assert_eq!(mails[0].header("message-id"), mails[1].header("message-id"));
    assert!(mails[0].header("message-id").ends_with("@ledgerhook>"));
    assert_eq!(env.balance("user-crash").await, total_credits("vip"));
}

#[tokio::test]
async fn workers_told_the_channels_need_no_secrets_and_a_channel_the_notifier_cannot_send_is_parked()
 {
    let env = TestEnv::new().await.unwrap();
    let feishu = ChatEndpoint::start(StatusCode::OK, json!({"code": 0, "msg": "success"})).await;
    let ingester = env.start_ingester(&[]).await.unwrap();
    // The worker gets the list only: no webhook URL, no SMTP password.
    let _worker = env
        .start_worker(&[("NOTIFY_CHANNELS", "discord,feishu")])
        .await
        .unwrap();
    // The notifier can send Feishu, but has no settings for Discord.
    let notifier = env
        .start_notifier(&[
            ("NOTIFY_FEISHU_WEBHOOK_URL", feishu.url.as_str()),
            ("NOTIFY_POLL_MS", "50"),
        ])
        .await
        .unwrap();

    let body = paid_with_email("cm-listed", "user-listed", "pro", "buyer@example.com");
    assert_eq!(ingester.send(&body).await.status, 200);
    env.wait_for_count(
        "select count(*) from notifications where channel = 'feishu' and sent_at is not null",
        1,
        WAIT,
    )
    .await;
    env.wait_for_count(
        "select count(*) from notifications where channel = 'discord' and parked_at is not null
           and sent_at is null and last_error like '%NOTIFY_DISCORD_WEBHOOK_URL%'",
        1,
        WAIT,
    )
    .await;
    // No email row: the list names no email, though the event has an address.
    assert_eq!(env.count("select count(*) from notifications").await, 2);
    assert_eq!(feishu.received().len(), 1);
    notifier
        .metrics_once("ledgerhook_notifications_parked", &[], 1.0)
        .await;
    assert_eq!(env.balance("user-listed").await, total_credits("pro"));
}

#[tokio::test]
async fn an_unknown_channel_in_notify_channels_stops_the_worker_at_start() {
    let env = TestEnv::new().await.unwrap();
    let started = env.start_worker(&[("NOTIFY_CHANNELS", "email,sms")]).await;
    let error = format!(
        "{:#}",
        started.err().expect("the worker must refuse to start")
    );
    assert!(error.contains("NOTIFY_CHANNELS"), "{error}");
}

#[tokio::test]
async fn a_row_is_recorded_sent_as_soon_as_its_send_ends_not_when_its_claim_does() {
    let env = TestEnv::new().await.unwrap();
    let mut smtp = SmtpSink::new("plain", &[]).await;
    smtp.start().await;
    let mut settings = smtp_env(&format!("smtp://127.0.0.1:{}", smtp.port));
    settings.retain(|(k, _)| *k != "NOTIFY_SEND_TIMEOUT_MS");
    settings.push(("NOTIFY_SEND_TIMEOUT_MS", "60000".to_owned()));
    settings.push(("NOTIFY_BATCH_SIZE", "2".to_owned()));
    settings.push(("NOTIFY_CONCURRENCY", "2".to_owned()));
    let ingester = env.start_ingester(&[]).await.unwrap();
    let _worker = env.start_worker(&pairs(&settings)).await.unwrap();
    // Both rows are written before the notifier starts, so one claim takes both.
    for (order, email) in [
        ("cm-held", "held@example.com"),
        ("cm-quick", "quick@example.com"),
    ] {
        let body = paid_with_email(order, &format!("user-{order}"), "starter", email);
        assert_eq!(ingester.send(&body).await.status, 200);
    }
    env.wait_all_processed(2, WAIT).await;
    assert_eq!(env.count("select count(*) from notifications").await, 2);
    let _notifier = env.start_notifier(&pairs(&settings)).await.unwrap();

    // The held send is still in flight (its reply waits for the release),
    // yet the quick one is already recorded sent.
    smtp.wait_for_mails(2).await;
    env.wait_for_count(
        "select count(*) from notifications where sent_at is not null and recipient = 'quick@example.com'",
        1,
        WAIT,
    )
    .await;
    assert_eq!(
        env.count("select count(*) from notifications where sent_at is null and recipient = 'held@example.com'")
            .await,
        1
    );
    smtp.release();
    env.wait_for_count(
        "select count(*) from notifications where sent_at is not null and attempts = 1",
        2,
        WAIT,
    )
    .await;
    assert_eq!(smtp.mails().len(), 2, "each sent once");
}

/// A revoke and a grant by hand tell the buyer too, and neither waits for
/// the mail server: both succeed while it is down, and the mails follow.
#[tokio::test]
async fn a_revoke_and_a_grant_by_hand_mail_the_buyer_without_waiting_for_the_mail_server() {
    let env = TestEnv::new().await.unwrap();
    let mut smtp = SmtpSink::new("plain", &[]).await;
    let settings = smtp_env(&format!("smtp://127.0.0.1:{}", smtp.port));
    let ingester = env.start_ingester(&[]).await.unwrap();
    let _worker = env.start_worker(&pairs(&settings)).await.unwrap();
    let _notifier = env.start_notifier(&pairs(&settings)).await.unwrap();

    let paid = paid_with_email("cm-revoked", "user-revoked", "pro", "revoked@example.com");
    assert_eq!(ingester.send(&paid).await.status, 200);
    env.wait_all_processed(1, WAIT).await;
    // With the mail server down, the operator's commands still succeed.
    let revoked = env
        .admin(&[
            "--operator",
            "ops",
            "revoke",
            "cm-revoked",
            "--reason",
            "fraud ring",
        ])
        .await
        .unwrap();
    assert!(revoked.contains("revoked order cm-revoked"), "{revoked}");
    assert_eq!(env.balance("user-revoked").await, 0);
    env.create_order("cm-by-hand", "user-by-hand", "starter")
        .await;
    let granted = env
        .admin(&[
            "--operator",
            "ops",
            "grant",
            "--user",
            "user-by-hand",
            "--credits",
            "500",
            "--idempotency-key",
            "by-hand-1",
            "--order",
            "cm-by-hand",
            "--email",
            "by-hand@example.com",
            "--reason",
            "webhook lost",
        ])
        .await
        .unwrap();
    assert!(
        granted.contains("the buyer is emailed at by-hand@example.com"),
        "{granted}"
    );
    // An order whose buyer left no address: granted, and no mail.
    env.create_order("cm-no-address", "user-no-address", "starter")
        .await;
    let silent = env
        .admin(&[
            "--operator",
            "ops",
            "grant",
            "--user",
            "user-no-address",
            "--credits",
            "500",
            "--idempotency-key",
            "by-hand-2",
            "--order",
            "cm-no-address",
            "--reason",
            "lost",
        ])
        .await
        .unwrap();
    assert!(silent.contains("no email"), "{silent}");

    smtp.start().await;
    let mails = smtp.wait_for_mails(3).await;
    let subject_to = |to: &str| {
        mails
            .iter()
            .find(|m| m.header("x-rcpt-to") == to)
            .map(|m| (m.header("subject"), m.body.clone()))
            .unwrap_or_else(|| panic!("no mail to {to}"))
    };
    let mut to_revoked: Vec<String> = mails
        .iter()
        .filter(|m| m.header("x-rcpt-to") == "revoked@example.com")
        .map(|m| m.header("subject").to_owned())
        .collect();
    to_revoked.sort();
    assert_eq!(
        to_revoked,
        [
            "3,300 credits removed from your account",
            "Your 3,300 credits have arrived"
        ]
    );
    let (subject, body) = subject_to("by-hand@example.com");
    assert_eq!(subject, "Your 500 credits have arrived");
    assert!(
        body.contains("support team has added 500 credits"),
        "{body}"
    );
    assert!(
        !body.contains("webhook lost"),
        "the operator's reason stays ours"
    );
    env.wait_for_count(
        "select count(*) from notifications where sent_at is not null",
        3,
        WAIT,
    )
    .await;
    assert_eq!(
        smtp.mails().len(),
        3,
        "nothing to the buyer without an address"
    );
}
