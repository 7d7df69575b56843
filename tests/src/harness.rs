//! A fresh world per test: its own database, its own queue prefix, the real
//! ingester and worker binaries as child processes on OS-chosen ports.
//!
//! The binaries are found beside the running executable (`target/<profile>/`),
//! so build them before running the tests: the README's test command does.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use ledgerhook_shared::config::{DEFAULT_AMQP_URL, process_env};
use serde_json::Value;
use sqlx::PgPool;

use crate::api_client::{Api, TEST_JWT_SECRET};
use crate::fake_crossmint::FAKE_API_KEY;
use crate::leftovers;
use crate::webhook::{TEST_SECRET, new_delivery_id, svix_headers, test_secret};

const ADMIN_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// One test's database and queue prefix. Dropped last (declare it first):
/// its drop removes the database and the queues.
pub struct TestEnv {
    pub database_url: String,
    pub amqp_url: String,
    pub queue_prefix: String,
    pub pool: PgPool,
    db_name: String,
    admin_url: String,
    http: reqwest::Client,
}

impl TestEnv {
    pub async fn new() -> anyhow::Result<Self> {
        let admin =
            process_env("TEST_ADMIN_DATABASE_URL").unwrap_or_else(|| ADMIN_DATABASE_URL.into());
        Self::on(&admin).await
    }

    /// A test world on the PostgreSQL server whose maintenance database is
    /// at `admin` (a test's own server, say). Query parameters of `admin`
    /// (`sslmode`, `sslrootcert`) carry over to the test's database.
    pub async fn on(admin: &str) -> anyhow::Result<Self> {
        let amqp_url = process_env("AMQP_URL").unwrap_or_else(|| DEFAULT_AMQP_URL.into());
        leftovers::sweep_once(admin, &amqp_url);
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let db_name = leftovers::world_name(leftovers::DATABASE_STEM, '_', &tag[..12]);
        let database_url = database_url_beside(admin, &db_name)?;
        let pool = ledgerhook_shared::db::connect_and_migrate(&database_url, 8, "ledgerhook-tests")
            .await?;
        Ok(Self {
            database_url,
            amqp_url,
            queue_prefix: leftovers::world_name(leftovers::QUEUE_PREFIX_STEM, '.', &tag[..12]),
            pool,
            db_name,
            admin_url: admin.to_owned(),
            http: reqwest::Client::new(),
        })
    }

    fn base_env(&self) -> Vec<(String, String)> {
        [
            ("DATABASE_URL", self.database_url.as_str()),
            ("AMQP_URL", self.amqp_url.as_str()),
            ("QUEUE_PREFIX", self.queue_prefix.as_str()),
            ("CROSSMINT_WEBHOOK_SECRET", TEST_SECRET),
            ("LISTEN_ADDR", "127.0.0.1:0"),
            ("METRICS_ADDR", "127.0.0.1:0"),
            ("DATABASE_POOL_SIZE", "8"),
            ("RUST_LOG", "info"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    pub async fn start_ingester(&self, extra: &[(&str, &str)]) -> anyhow::Result<Ingester> {
        let service = Service::spawn("ledgerhook-ingester", self.base_env(), extra).await?;
        let addr = service
            .http_addr
            .context("the ingester reports its address")?;
        Ok(Ingester {
            url: format!("http://{addr}/webhooks/crossmint"),
            base: format!("http://{addr}"),
            service,
            http: self.http.clone(),
        })
    }

    /// The frontend's API, talking to Crossmint at `crossmint_api_url` (a
    /// [`crate::fake_crossmint::FakeCrossmint`]'s).
    pub async fn start_api(
        &self,
        crossmint_api_url: &str,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Api> {
        let mut env = self.base_env();
        env.extend(
            [
                ("AUTH_JWT_SECRET", TEST_JWT_SECRET),
                ("CROSSMINT_API_URL", crossmint_api_url),
                ("CROSSMINT_SERVER_API_KEY", FAKE_API_KEY),
                ("CROSSMINT_COLLECTION_ID", "fake-collection"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        let service = Service::spawn("ledgerhook-api", env, extra).await?;
        Api::new(service, self.http.clone())
    }

    pub async fn start_worker(&self, extra: &[(&str, &str)]) -> anyhow::Result<Service> {
        Service::spawn("ledgerhook-worker", self.base_env(), extra).await
    }

    /// Runs `ledgerhook-admin` with this test's database and queue prefix;
    /// its standard output, or an error with both outputs.
    pub async fn admin(&self, args: &[&str]) -> anyhow::Result<String> {
        let path = bin_dir()?.join("ledgerhook-admin");
        let output = tokio::task::spawn_blocking({
            let env = self.base_env();
            let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
            move || {
                Command::new(path)
                    .args(args)
                    .envs(env)
                    .stdin(Stdio::null())
                    .output()
            }
        })
        .await??;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            bail!(
                "ledgerhook-admin failed: {stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(stdout)
    }

    /// Runs `ledgerhook-loadgen` against `ingester` and this test's database
    /// (it waits for processing and checks the ledger invariant itself);
    /// returns whether it succeeded, and its output.
    pub fn loadgen(
        &self,
        ingester: &Ingester,
        args: &[&str],
    ) -> tokio::task::JoinHandle<(bool, String)> {
        let path = bin_dir().map(|dir| dir.join("ledgerhook-loadgen"));
        let mut command_args = vec![
            "--url".to_owned(),
            ingester.url.clone(),
            "--database-url".to_owned(),
            self.database_url.clone(),
        ];
        command_args.extend(args.iter().map(|a| (*a).to_owned()));
        tokio::task::spawn_blocking(move || {
            let Ok(path) = path else {
                return (false, "no binary folder".to_owned());
            };
            match Command::new(path)
                .args(command_args)
                .env("CROSSMINT_WEBHOOK_SECRET", TEST_SECRET)
                .env("RUST_BACKTRACE", "0")
                .stdin(Stdio::null())
                .output()
            {
                Ok(output) => (
                    output.status.success(),
                    format!(
                        "{}{}",
                        String::from_utf8_lossy(&output.stdout),
                        String::from_utf8_lossy(&output.stderr)
                    ),
                ),
                Err(e) => (false, format!("could not run ledgerhook-loadgen: {e}")),
            }
        })
    }

    /// Messages ready in a queue of this test's prefix.
    pub async fn queue_depth(&self, queue: &str) -> anyhow::Result<u32> {
        let connection =
            ledgerhook_shared::amqp::connect(&self.amqp_url, "ledgerhook-tests").await?;
        let channel = connection.create_channel().await?;
        let declared = channel
            .queue_declare(
                queue.into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                Default::default(),
            )
            .await?;
        Ok(declared.message_count())
    }

    pub async fn balance(&self, user_id: &str) -> i64 {
        sqlx::query_scalar("select balance from user_credits where user_id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await
            .expect("reading a balance")
            .unwrap_or(0)
    }

    /// A count; retried a few times, since a fault test's own server may
    /// just have restarted under the pool's connections.
    pub async fn count(&self, sql: &str) -> i64 {
        let mut attempts = 0;
        loop {
            match sqlx::query_scalar(sql).fetch_one(&self.pool).await {
                Ok(count) => return count,
                Err(e) if attempts < 20 => {
                    attempts += 1;
                    eprintln!("retrying `{sql}`: {e}");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => panic!("{sql}: {e}"),
            }
        }
    }

    /// Polls until `sql` (a count) reaches `expected`, or fails after `timeout`.
    pub async fn wait_for_count(&self, sql: &str, expected: i64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self.count(sql).await;
            if seen == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "waited {timeout:?} for `{sql}` to be {expected}; it is {seen}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every recorded delivery has been processed or parked.
    pub async fn wait_all_processed(&self, expected_deliveries: i64, timeout: Duration) {
        self.wait_for_count(
            "select count(*) from webhook_deliveries where processed_at is not null",
            expected_deliveries,
            timeout,
        )
        .await;
    }

    /// Creates an order the way the backend does before payment.
    pub async fn create_order(&self, crossmint_order_id: &str, user_id: &str, package_id: &str) {
        let package =
            ledgerhook_shared::domain::find_package(package_id).expect("a catalogue package");
        sqlx::query(
            "insert into payment_orders (id, crossmint_order_id, user_id, package_id, package_snapshot,
                 amount, base_credits, bonus_credits, total_credits, created_from)
             values ($1, $2, $3, $4, $5, $6::numeric, $7, $8, $9, 'api')",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(crossmint_order_id)
        .bind(user_id)
        .bind(package.id)
        .bind(package.snapshot())
        .bind(package.price.to_string())
        .bind(package.credits)
        .bind(package.bonus_credits)
        .bind(package.total_credits())
        .execute(&self.pool)
        .await
        .expect("creating an order");
    }
}

/// `admin` with its database replaced by `db_name`, the rest (user, host,
/// query) kept.
fn database_url_beside(admin: &str, db_name: &str) -> anyhow::Result<String> {
    let mut url = reqwest::Url::parse(admin).context("TEST_ADMIN_DATABASE_URL is not a URL")?;
    if url.path().trim_matches('/').is_empty() {
        bail!("TEST_ADMIN_DATABASE_URL has no database part");
    }
    url.set_path(db_name);
    Ok(url.into())
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if process_env("LEDGERHOOK_KEEP_TEST_DB").is_some() {
            eprintln!(
                "keeping database {} and queues {}.*",
                self.db_name, self.queue_prefix
            );
            return;
        }
        let db_name = self.db_name.clone();
        let admin = self.admin_url.clone();
        let amqp_url = self.amqp_url.clone();
        let topology = ledgerhook_shared::amqp::Topology::new(&self.queue_prefix);
        let prefix = self.queue_prefix.clone();
        // Drop cannot await; clean up on a runtime of our own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                // The server may be gone already (a test's own, stopped).
                if let Ok(pool) = PgPool::connect(&admin).await {
                    sqlx::query(&format!("drop database if exists {db_name} with (force)"))
                        .execute(&pool)
                        .await?;
                }
                let connection =
                    ledgerhook_shared::amqp::connect(&amqp_url, "ledgerhook-tests").await?;
                let channel = connection.create_channel().await?;
                // The work and parked queues, and the wait queues the workers
                // declared (named by delay, so listed rather than guessed).
                let mut queues = vec![topology.queue.clone(), topology.parked_queue.clone()];
                queues.extend(wait_queues(&prefix));
                for queue in queues {
                    channel
                        .queue_delete(queue.as_str().into(), Default::default())
                        .await?;
                }
                channel
                    .exchange_delete(topology.exchange.as_str().into(), Default::default())
                    .await?;
                anyhow::Ok(())
            })
        });
        if let Ok(Err(e)) = cleanup.join() {
            eprintln!("test cleanup incomplete: {e:#}");
        }
    }
}

/// The wait queues under `prefix`, as `rabbitmqctl` lists them (none if it
/// is not available: then they stay behind, empty).
fn wait_queues(prefix: &str) -> Vec<String> {
    let wait_prefix = format!("{prefix}.wait.");
    let mut queues = leftovers::rabbitmqctl_names("list_queues");
    queues.retain(|name| name.starts_with(&wait_prefix));
    queues
}

/// A running binary. Killed on drop; its log is printed if the test failed.
pub struct Service {
    child: Child,
    name: &'static str,
    pub http_addr: Option<SocketAddr>,
    pub metrics_addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    env: Vec<(String, String)>,
}

fn bin_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = process_env("LEDGERHOOK_BIN_DIR") {
        return Ok(dir.into());
    }
    let exe = std::env::current_exe()?;
    let mut dir = exe
        .parent()
        .context("the executable has a folder")?
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    Ok(dir)
}

impl Service {
    async fn spawn(
        name: &'static str,
        mut env: Vec<(String, String)>,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        for (key, value) in extra {
            env.retain(|(k, _)| k != key);
            env.push(((*key).to_owned(), (*value).to_owned()));
        }
        let path = bin_dir()?.join(name);
        if !path.exists() {
            bail!(
                "{} not found: build the binaries first (cargo build --workspace --bins)",
                path.display()
            );
        }
        let mut child = Command::new(&path)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", path.display()))?;
        let stderr = child.stderr.take().context("stderr is piped")?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = mpsc::channel();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if ["ingester listening", "worker started", "api listening"]
                    .iter()
                    .any(|ready| line.contains(ready))
                {
                    let _ = ready_tx.send(line.clone());
                }
                lines.lock().expect("log lock").push(line);
            }
        });
        let ready =
            tokio::task::spawn_blocking(move || ready_rx.recv_timeout(STARTUP_TIMEOUT)).await?;
        let Ok(ready_line) = ready else {
            let _ = child.kill();
            let log = log.lock().expect("log lock").join("\n");
            bail!("{name} did not start within {STARTUP_TIMEOUT:?}; its log:\n{log}");
        };
        Ok(Self {
            child,
            name,
            http_addr: field(&ready_line, "http="),
            metrics_addr: field(&ready_line, "metrics=")
                .context("the service reports its metrics address")?,
            log,
            env,
        })
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits up to `timeout` for the exit; the exit status.
    pub async fn terminate(
        &mut self,
        timeout: Duration,
    ) -> anyhow::Result<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("{} did not exit within {timeout:?} of SIGTERM", self.name);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts the same binary again with the same environment.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        let fresh = Self::spawn(self.name, self.env.clone(), &[]).await?;
        drop(std::mem::replace(self, fresh));
        Ok(())
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.metrics_addr))
            .await
            .expect("scraping metrics")
            .text()
            .await
            .expect("reading metrics")
    }

    pub fn log(&self) -> String {
        self.log.lock().expect("log lock").join("\n")
    }
}

fn field(line: &str, key: &str) -> Option<SocketAddr> {
    if let Ok(json) = serde_json::from_str::<Value>(line) {
        // LOG_FORMAT=json
        let name = key.trim_end_matches('=');
        return json["fields"][name].as_str()?.parse().ok();
    }
    line.split_whitespace()
        .find_map(|token| token.strip_prefix(key))
        .and_then(|value| value.parse().ok())
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- last lines of {} ---", self.name);
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// The ingester and a client for it.
pub struct Ingester {
    pub service: Service,
    pub url: String,
    pub base: String,
    http: reqwest::Client,
}

/// What an HTTP endpoint answered.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub retry_after: Option<String>,
    pub headers: reqwest::header::HeaderMap,
}

impl Answer {
    pub(crate) async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let retry_after = headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response.text().await.unwrap_or_default();
        Self {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
            retry_after,
            headers,
        }
    }

    /// A response header as text, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Ingester {
    /// Sends `body` correctly signed under a fresh delivery id.
    pub async fn send(&self, body: &Value) -> Answer {
        self.send_as(&new_delivery_id(), body).await
    }

    /// Sends `body` correctly signed under `delivery_id`.
    pub async fn send_as(&self, delivery_id: &str, body: &Value) -> Answer {
        let bytes = serde_json::to_vec(body).expect("serialising a body");
        let headers = svix_headers(&test_secret(), delivery_id, &bytes);
        self.send_raw(
            &headers
                .iter()
                .map(|(k, v)| (*k, v.clone()))
                .collect::<Vec<_>>(),
            bytes,
        )
        .await
    }

    /// Sends exactly these headers and bytes.
    pub async fn send_raw(&self, headers: &[(&str, String)], body: Vec<u8>) -> Answer {
        let mut request = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        Answer::read(request.send().await.expect("the ingester answers")).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("the ingester answers");
        Answer::read(response).await
    }
}

#[cfg(test)]
mod tests {
    use super::database_url_beside;

    #[test]
    fn a_test_database_keeps_the_admin_urls_tls_parameters() {
        let admin = "postgres://postgres@127.0.0.1:5433/postgres?sslmode=verify-full&sslrootcert=/tmp/x/ca.pem";
        assert_eq!(
            database_url_beside(admin, "ledgerhook_test_1").unwrap(),
            "postgres://postgres@127.0.0.1:5433/ledgerhook_test_1?sslmode=verify-full&sslrootcert=/tmp/x/ca.pem"
        );
        assert_eq!(
            database_url_beside("postgres://postgres@127.0.0.1:5432/postgres", "d").unwrap(),
            "postgres://postgres@127.0.0.1:5432/d"
        );
        assert!(database_url_beside("postgres://postgres@127.0.0.1:5432", "d").is_err());
    }
}
