//! The binaries as child processes: started with a world's environment on
//! OS-chosen ports, ready when they say so over HTTP, their logs kept,
//! killed on drop.
//!
//! The binaries are found beside the running executable (`target/<profile>/`),
//! so build them before running the tests: the README's test command does.
//!
//! Readiness: each binary prints one start line carrying the addresses it
//! bound (`http=ADDR` for the ingester and the API, `metrics=ADDR` for all
//! three); that line is read for its addresses only, and readiness is then
//! asked of the process itself: `GET /readyz` answering 200 for the ingester
//! and the API, `GET /metrics` answering 200 for the worker, which has no
//! readiness endpoint. Then, once the probe's connection is closed on the
//! server's side too, the binary is handed to the test.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use anyhow::{Context as _, bail};
use ledgerhook_runtime::config::process_env;

use super::client::Ingester;
use super::world::TestEnv;
use crate::api_client::{Api, TEST_JWT_SECRET};
use crate::eventually::{eventually, seen, within};
use crate::fake_crossmint::FAKE_API_KEY;
use crate::stripe_webhook::STRIPE_TEST_SECRET;
use crate::webhook::TEST_SECRET;

/// How long a binary may take to print its start line, and then to answer
/// its readiness probe.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// How long [`Service::metrics_once`] waits for a metric to catch up.
const METRICS_CATCH_UP: Duration = Duration::from_secs(30);

impl TestEnv {
    /// The ingester, serving both providers: Crossmint with
    /// [`TEST_SECRET`], Stripe with [`STRIPE_TEST_SECRET`] (`extra` may
    /// override or blank either).
    pub async fn start_ingester(&self, extra: &[(&str, &str)]) -> anyhow::Result<Ingester> {
        let mut env = self.base_env();
        env.push((
            "STRIPE_WEBHOOK_SECRET".to_owned(),
            STRIPE_TEST_SECRET.to_owned(),
        ));
        let service = Service::spawn("ledgerhook-ingester", env, extra).await?;
        Ingester::new(service, self.http.clone())
    }

    /// The frontend's API, talking to Crossmint at `crossmint_api_url` (a
    /// [`crate::fake_crossmint::FakeCrossmint`]'s). Stripe is off unless
    /// `extra` sets `STRIPE_SECRET_KEY` (with `STRIPE_API_URL` of a
    /// [`crate::fake_stripe::FakeStripe`] and the two return URLs).
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

    /// The operator console on a port of its own (`http_addr`).
    pub async fn start_console(&self, extra: &[(&str, &str)]) -> anyhow::Result<Service> {
        let mut env = self.base_env();
        env.push(("CONSOLE_LISTEN_ADDR".to_owned(), "127.0.0.1:0".to_owned()));
        Service::spawn("ledgerhook-console", env, extra).await
    }

    pub async fn start_worker(&self, extra: &[(&str, &str)]) -> anyhow::Result<Service> {
        let mut env = self.base_env();
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        self.note_wait_queues(&env);
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
        self.loadgen_at(&ingester.url, args)
    }

    /// [`TestEnv::loadgen`] against the webhook URL `url` (a balancer's).
    pub fn loadgen_at(&self, url: &str, args: &[&str]) -> tokio::task::JoinHandle<(bool, String)> {
        let path = bin_dir().map(|dir| dir.join("ledgerhook-loadgen"));
        let mut command_args = vec![
            "--url".to_owned(),
            url.to_owned(),
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

/// Where the binaries are: beside the test executable (or
/// `LEDGERHOOK_BIN_DIR`), where `cargo build --workspace --bins` puts them.
pub fn bin_dir() -> anyhow::Result<PathBuf> {
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

/// The addresses a binary's start line reports.
struct Bound {
    http: Option<SocketAddr>,
    metrics: SocketAddr,
}

impl Bound {
    /// The addresses in `line`, if it is a start line: it carries
    /// `metrics=ADDR`, and `http=ADDR` too for a binary that serves HTTP.
    fn parse(line: &str, serves_http: bool) -> Option<Self> {
        let metrics = field(line, "metrics=")?;
        let http = field(line, "http=");
        (http.is_some() == serves_http).then_some(Self { http, metrics })
    }

    /// Where readiness is asked: the HTTP port's `/readyz` where there is
    /// one, else the metrics page (the worker, the notifier). The worker's
    /// own `/readyz` (database and broker session) is not waited on here:
    /// its messages wait in the queue until it consumes, and
    /// `worker_health.rs` tests that probe itself.
    fn probe_url(&self) -> String {
        match self.http {
            Some(http) => format!("http://{http}/readyz"),
            None => format!("http://{}/metrics", self.metrics),
        }
    }
}

impl Service {
    pub(super) async fn spawn(
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
        let serves_http = !matches!(name, "ledgerhook-worker" | "ledgerhook-notifier");
        let (bound_tx, bound_rx) = mpsc::channel();
        let lines = log.clone();
        std::thread::spawn(move || {
            let mut bound_tx = Some(bound_tx);
            // Read to the end whatever arrives: a reader that stopped at a
            // line it could not decode would let the pipe fill, and the
            // process would then block on its next log line.
            let mut reader = BufReader::new(stderr);
            let mut raw = Vec::new();
            while reader.read_until(b'\n', &mut raw).is_ok_and(|n| n > 0) {
                let line = String::from_utf8_lossy(&raw)
                    .trim_end_matches(['\n', '\r'])
                    .to_owned();
                raw.clear();
                if bound_tx.is_some()
                    && let Some(bound) = Bound::parse(&line, serves_http)
                    && let Some(tx) = bound_tx.take()
                {
                    let _ = tx.send(bound);
                }
                lines.lock().expect("log lock").push(line);
            }
        });
        let mut service = Self {
            child,
            name,
            http_addr: None,
            // Replaced below; a dropped, unstarted service prints its log.
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
            env,
        };
        // Ends at once, with the log, if the process exits first.
        let bound =
            tokio::task::spawn_blocking(move || bound_rx.recv_timeout(STARTUP_TIMEOUT)).await?;
        let Ok(bound) = bound else {
            service.kill();
            bail!(
                "{name} did not report its addresses within {STARTUP_TIMEOUT:?}; its log:\n{}",
                service.log()
            );
        };
        service.http_addr = bound.http;
        service.metrics_addr = bound.metrics;
        let probe = bound.probe_url();
        let ready = within(STARTUP_TIMEOUT, async || {
            let answer = reqwest::get(&probe).await.map_err(|e| e.to_string())?;
            let status = answer.status();
            let body = answer.text().await.unwrap_or_default();
            if status.is_success() {
                Ok(())
            } else {
                Err(format!("{status} {body}"))
            }
        })
        .await;
        if let Err(e) = ready {
            service.kill();
            bail!(
                "{name} never answered {probe}: {e:#}; its log:\n{}",
                service.log()
            );
        }
        // The probe's connection is closed once the server has let it go, so
        // a test counting connections (a connection limit) starts from none.
        let metrics_url = format!("http://{}/metrics", service.metrics_addr);
        let idle = within(STARTUP_TIMEOUT, async || {
            let page = reqwest::get(&metrics_url)
                .await
                .map_err(|e| e.to_string())?
                .text()
                .await
                .map_err(|e| e.to_string())?;
            let open = crate::scrape::sum(&page, "ledgerhook_http_connections_open", &[]);
            seen(open, open == 0.0).map_err(|open| format!("{open} connections open"))
        })
        .await;
        if let Err(e) = idle {
            service.kill();
            bail!("{name} kept the readiness probe's connection: {e:#}");
        }
        Ok(service)
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGSTOP: the process holds what it holds and does nothing (its
    /// connections stay open, unanswered) until [`Service::thaw`].
    pub fn freeze(&self) -> anyhow::Result<()> {
        signal(&self.child, "-STOP")
    }

    /// SIGCONT after [`Service::freeze`].
    pub fn thaw(&self) -> anyhow::Result<()> {
        signal(&self.child, "-CONT")
    }

    /// SIGTERM, then waits up to `timeout` for the exit; the exit status.
    pub async fn terminate(
        &mut self,
        timeout: Duration,
    ) -> anyhow::Result<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        let name = self.name;
        within(timeout, async || match self.child.try_wait() {
            Ok(Some(status)) => Ok(status),
            Ok(None) => Err(format!("{name} is still running after SIGTERM")),
            Err(e) => Err(format!("{name}'s status cannot be read: {e}")),
        })
        .await
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

    /// The sum of a metric's samples whose labels include all of `labels`
    /// (see [`crate::scrape::sum`]).
    pub async fn metric(&self, name: &str, labels: &[&str]) -> f64 {
        crate::scrape::sum(&self.metrics().await, name, labels)
    }

    /// The metrics page once `name` (summed over the samples whose labels
    /// include all of `labels`) has reached `at_least`. The worker records an
    /// outcome's metrics just after committing it, so a test that has seen
    /// the outcome in the database may otherwise read the page a moment too
    /// early. (A counter that went past `at_least` is returned as it is, for
    /// the test to find the surplus.)
    pub async fn metrics_once(&self, name: &str, labels: &[&str], at_least: f64) -> String {
        eventually(METRICS_CATCH_UP, async || {
            let page = self.metrics().await;
            let value = crate::scrape::sum(&page, name, labels);
            seen(value, value >= at_least)
                .map(|_| page)
                .map_err(|value| format!("{name}{labels:?} is {value}, not yet {at_least}"))
        })
        .await
    }

    pub fn log(&self) -> String {
        self.log.lock().expect("log lock").join("\n")
    }

    /// Waits until a line of the log contains every one of `needles`; that
    /// line.
    pub async fn log_line(&self, needles: &[&str], timeout: Duration) -> String {
        eventually(timeout, async || {
            let log = self.log();
            log.lines()
                .find(|line| needles.iter().all(|n| line.contains(n)))
                .map(str::to_owned)
                .ok_or_else(|| format!("no line with {needles:?} in the log:\n{log}"))
        })
        .await
    }
}

fn field(line: &str, key: &str) -> Option<SocketAddr> {
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(line) {
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

#[cfg(test)]
mod tests {
    use super::Bound;

    #[test]
    fn a_start_line_is_known_by_the_addresses_it_carries() {
        let ingester = "2026-11-23T00:00:00Z  INFO ledgerhook_ingester: ingester listening http=127.0.0.1:4100 metrics=127.0.0.1:4101";
        let bound = Bound::parse(ingester, true).unwrap();
        assert_eq!(bound.probe_url(), "http://127.0.0.1:4100/readyz");
        assert!(Bound::parse(ingester, false).is_none());

        let worker =
            "2026-11-23T00:00:00Z  INFO ledgerhook_worker: worker started metrics=127.0.0.1:4102";
        let bound = Bound::parse(worker, false).unwrap();
        assert_eq!(bound.probe_url(), "http://127.0.0.1:4102/metrics");
        assert!(Bound::parse(worker, true).is_none());

        assert!(Bound::parse("INFO consuming queue=x prefetch=8", false).is_none());
    }
}

/// What one run of `ledgerhook-admin` did: its exit code and outputs.
#[derive(Debug)]
pub struct AdminRun {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl AdminRun {
    /// Its standard output as the one JSON document `--json` promises.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not one JSON document ({e}): {self:?}"))
    }
}

/// Runs `ledgerhook-admin` with exactly `env` (and nothing of this
/// process's environment), whatever its exit status.
pub async fn run_admin(env: Vec<(String, String)>, args: &[&str]) -> anyhow::Result<AdminRun> {
    let path = bin_dir()?.join("ledgerhook-admin");
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(path)
            .args(args)
            .env_clear()
            .envs(env)
            .stdin(Stdio::null())
            .output()
    })
    .await??;
    Ok(AdminRun {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

impl TestEnv {
    /// Runs `ledgerhook-admin` with this world's environment plus `extra`,
    /// whatever its exit status.
    pub async fn admin_run(
        &self,
        args: &[&str],
        extra: &[(&str, &str)],
    ) -> anyhow::Result<AdminRun> {
        let mut env = self.base_env();
        for (key, value) in extra {
            env.retain(|(k, _)| k != key);
            env.push(((*key).to_owned(), (*value).to_owned()));
        }
        run_admin(env, args).await
    }
}

fn signal(child: &Child, which: &str) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .args([which, &child.id().to_string()])
        .status()?;
    anyhow::ensure!(status.success(), "kill {which} failed: {status}");
    Ok(())
}
