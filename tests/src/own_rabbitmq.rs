//! A RabbitMQ node of a test's own (its own node name, ports and data
//! directory), so a fault test can stop and restart a broker without
//! disturbing anything else. Runs the installed server as the current user.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

const BIN: &str = "/usr/lib/rabbitmq/bin";
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub struct OwnRabbitMq {
    dir: PathBuf,
    node: String,
    pub port: u16,
    dist_port: u16,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl OwnRabbitMq {
    pub fn start() -> anyhow::Result<Self> {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("ledgerhook-rabbitmq-{}", &tag[..12]));
        std::fs::create_dir_all(&dir)?;
        // No plugins: the management plugin would want ports of its own.
        std::fs::write(dir.join("enabled_plugins"), "[].")?;
        let broker = Self {
            node: format!("lhtest{}@localhost", &tag[..12]),
            port: free_port()?,
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

    /// Starts the node (again, with the same data) and waits for its port.
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
            .env("RABBITMQ_CONFIG_FILE", path("none"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("starting rabbitmq-server")?;
        if !status.success() {
            bail!("rabbitmq-server -detached failed: {status}");
        }
        let deadline = Instant::now() + START_TIMEOUT;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > deadline {
                bail!(
                    "RabbitMQ node {} did not open port {} in time",
                    self.node,
                    self.port
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
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

impl Drop for OwnRabbitMq {
    fn drop(&mut self) {
        let _ = self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
