//! A RabbitMQ node of a test's own (its own node name, ports and data
//! directory), so a fault test can stop and restart a broker without
//! disturbing anything else. Runs the installed server as the current user.
//! [`OwnRabbitMq::start_with_tls`] adds a TLS listener with a test's certificate.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::tls::{ServerCert, TestCa, write_pem};

const BIN: &str = "/usr/lib/rabbitmq/bin";
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub struct OwnRabbitMq {
    dir: PathBuf,
    node: String,
    pub port: u16,
    /// The TLS listener's port, when started with one.
    pub tls_port: Option<u16>,
    dist_port: u16,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl OwnRabbitMq {
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(None)
    }

    /// The same, plus a TLS listener presenting `cert` (issued by `ca`).
    pub fn start_with_tls(ca: &TestCa, cert: &ServerCert) -> anyhow::Result<Self> {
        Self::start_with(Some((ca, cert)))
    }

    fn start_with(tls: Option<(&TestCa, &ServerCert)>) -> anyhow::Result<Self> {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("ledgerhook-rabbitmq-{}", &tag[..12]));
        std::fs::create_dir_all(&dir)?;
        // No plugins: the management plugin would want ports of its own.
        std::fs::write(dir.join("enabled_plugins"), "[].")?;
        let tls_port = match tls {
            Some((ca, cert)) => Some(write_tls_config(&dir, ca, cert)?),
            None => None,
        };
        let broker = Self {
            node: format!("lhtest{}@localhost", &tag[..12]),
            port: free_port()?,
            tls_port,
            dist_port: free_port()?,
            dir,
        };
        broker.resume()?;
        Ok(broker)
    }

    /// `amqp://guest:guest@127.0.0.1:<port>/%2f`.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// `amqps://guest:guest@127.0.0.1:<tls port>/%2f` (guest may log in
    /// from the loopback address only, which this is).
    pub fn amqps_url(&self) -> Option<String> {
        self.tls_port
            .map(|port| format!("amqps://guest:guest@127.0.0.1:{port}/%2f"))
    }

    /// Starts the node (again, with the same data) and waits for its ports.
    pub fn resume(&self) -> anyhow::Result<()> {
        let path = |name: &str| self.dir.join(name).display().to_string();
        let status = Command::new(format!("{BIN}/rabbitmq-server"))
            .arg("-detached")
            .current_dir(&self.dir)
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", path("mnesia"))
            .env("RABBITMQ_LOG_BASE", path("log"))
            .env("RABBITMQ_PID_FILE", path("pid"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", path("enabled_plugins"))
            // 3.10 takes the path with its `.conf`; a file that does not
            // exist means no configuration.
            .env("RABBITMQ_CONFIG_FILE", path("rabbitmq.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("starting rabbitmq-server")?;
        if !status.success() {
            bail!("rabbitmq-server -detached failed: {status}");
        }
        let deadline = Instant::now() + START_TIMEOUT;
        for port in std::iter::once(self.port).chain(self.tls_port) {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                if Instant::now() > deadline {
                    bail!(
                        "RabbitMQ node {} did not open port {port} in time",
                        self.node
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }

    /// `rabbitmqctl -n NODE ARGS...`; its output.
    pub fn ctl(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = Command::new(format!("{BIN}/rabbitmqctl"))
            .args(["-n", &self.node])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .context("running rabbitmqctl")?;
        if !output.status.success() {
            bail!(
                "rabbitmqctl {args:?} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Stops and halts the node, as a broker restart or crash looks to clients.
    pub fn stop(&self) -> anyhow::Result<()> {
        let output = Command::new(format!("{BIN}/rabbitmqctl"))
            .args(["-n", &self.node, "stop"])
            .stdin(Stdio::null())
            .output()
            .context("running rabbitmqctl stop")?;
        if !output.status.success() {
            bail!(
                "rabbitmqctl stop failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }
}

/// Writes the certificate files and a `rabbitmq.conf` with a TLS listener
/// on a free port; that port. Clients are not asked for certificates: the
/// tests are about the client trusting the server.
fn write_tls_config(dir: &std::path::Path, ca: &TestCa, cert: &ServerCert) -> anyhow::Result<u16> {
    let file = |name: &str| dir.join(name).display().to_string();
    write_pem(&dir.join("ca.pem"), ca.pem(), false)?;
    write_pem(&dir.join("server.pem"), &cert.cert_pem, false)?;
    write_pem(&dir.join("server.key"), &cert.key_pem, true)?;
    let port = free_port()?;
    let config = format!(
        "listeners.ssl.default = 127.0.0.1:{port}\n\
         ssl_options.cacertfile = {}\n\
         ssl_options.certfile = {}\n\
         ssl_options.keyfile = {}\n\
         ssl_options.verify = verify_none\n\
         ssl_options.fail_if_no_peer_cert = false\n",
        file("ca.pem"),
        file("server.pem"),
        file("server.key"),
    );
    std::fs::write(dir.join("rabbitmq.conf"), config)?;
    Ok(port)
}

impl Drop for OwnRabbitMq {
    fn drop(&mut self) {
        let _ = self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
