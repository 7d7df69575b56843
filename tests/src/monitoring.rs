//! Prometheus and Alertmanager of a test's own: Debian's `prometheus` and
//! `prometheus-alertmanager` binaries (deploy/test.sh installs them), each
//! on a free loopback port with its data in a temporary folder, killed and
//! removed on drop. They run the project's own files: the alert rules
//! as they are, and the Alertmanager configuration the caller derives from
//! `deploy/compose/alertmanager.yml`.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::eventually::within;

const START_TIMEOUT: Duration = Duration::from_secs(30);

/// One of the two servers, running.
pub struct Daemon {
    name: &'static str,
    child: Child,
    dir: PathBuf,
    pub addr: SocketAddr,
}

/// A port nobody listens on now. The server binds it a moment later; a
/// clash in between fails the start loudly, with the server's log.
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The first of `names` on PATH: Debian installs Alertmanager as
/// `prometheus-alertmanager`, upstream as `alertmanager`.
fn find_binary(names: &[&str]) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
        .with_context(|| {
            format!("none of {names:?} is installed (deploy/test.sh installs Debian's packages)")
        })
}

impl Daemon {
    /// Starts `binary` with `args` (given `{dir}` and `{addr}` filled in)
    /// in a fresh folder holding `files`; ready once `GET /-/ready` is 200.
    async fn start(
        name: &'static str,
        binaries: &[&str],
        files: &[(&str, String)],
        args: &[&str],
    ) -> anyhow::Result<Self> {
        let binary = find_binary(binaries)?;
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("ledgerhook-{name}-{}", &tag[..12]));
        std::fs::create_dir_all(&dir)?;
        for (file, text) in files {
            std::fs::write(dir.join(file), text)?;
        }
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let args: Vec<String> = args
            .iter()
            .map(|arg| {
                arg.replace("{dir}", &dir.display().to_string())
                    .replace("{addr}", &addr.to_string())
            })
            .collect();
        let log = std::fs::File::create(dir.join("log"))?;
        let child = Command::new(&binary)
            .args(&args)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut daemon = Self {
            name,
            child,
            dir,
            addr,
        };
        let ready = format!("http://{addr}/-/ready");
        let answered = within(START_TIMEOUT, async || {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                return Err(format!("exited: {status}"));
            }
            let answer = reqwest::get(&ready).await.map_err(|e| e.to_string())?;
            if answer.status().is_success() {
                Ok(())
            } else {
                Err(answer.status().to_string())
            }
        })
        .await;
        if let Err(e) = answered {
            bail!(
                "{name} never answered {ready}: {e:#}; its log:\n{}",
                daemon.log()
            );
        }
        Ok(daemon)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Everything the server printed.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// `GET path` (the server's HTTP API), as JSON.
    pub async fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.url());
        let answer = reqwest::get(&url).await?.error_for_status()?;
        Ok(answer.json().await?)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!("--- last lines of {} ---", self.name);
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Prometheus evaluating `rules` (a file's path, used as it is) every
/// second, scraping each `(job, metrics address)` every second, and sending
/// to the Alertmanager at `alertmanager`.
pub async fn start_prometheus(
    rules: &Path,
    targets: &[(&str, SocketAddr)],
    alertmanager: SocketAddr,
) -> anyhow::Result<Daemon> {
    let rules = rules
        .canonicalize()
        .with_context(|| format!("the rules file {}", rules.display()))?;
    let scrape_configs: String = targets
        .iter()
        .map(|(job, addr)| {
            format!("  - job_name: {job}\n    static_configs:\n      - targets: [\"{addr}\"]\n")
        })
        .collect();
    // One-second intervals: the production 15 s would make a test wait
    // minutes; the rules themselves are unchanged.
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n  - {rules}\n\
         alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [\"{alertmanager}\"]\n\
         scrape_configs:\n{scrape_configs}",
        rules = rules.display(),
    );
    Daemon::start(
        "prometheus",
        &["prometheus"],
        &[("prometheus.yml", config)],
        &[
            "--config.file={dir}/prometheus.yml",
            "--storage.tsdb.path={dir}/data",
            "--web.listen-address={addr}",
        ],
    )
    .await
}

/// Alertmanager with `config` (the text of its configuration file), its
/// clustering off (no gossip port to clash with another test's).
pub async fn start_alertmanager(config: String) -> anyhow::Result<Daemon> {
    Daemon::start(
        "alertmanager",
        &["prometheus-alertmanager", "alertmanager"],
        &[("alertmanager.yml", config)],
        &[
            "--config.file={dir}/alertmanager.yml",
            "--storage.path={dir}/data",
            "--web.listen-address={addr}",
            "--cluster.listen-address=",
        ],
    )
    .await
}
