//! A RabbitMQ cluster of a test's own: three nodes (own node names, ports,
//! data directories, and an Erlang cookie of its own under a HOME of its
//! own), never touching the machine's broker. For failover tests: find the
//! work queue's leader, `kill -9` a node, freeze one (SIGSTOP), restart one.
//! Runs the installed server as the current user.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

const BIN: &str = "/usr/lib/rabbitmq/bin";
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a silent node has before its peers declare it down.
pub const NET_TICKTIME_SECS: u32 = 8;

pub struct OwnCluster {
    /// The cluster's HOME: its Erlang cookie, and a folder per node.
    home: PathBuf,
    pub nodes: Vec<Node>,
}

pub struct Node {
    pub name: String,
    pub port: u16,
    dist_port: u16,
    dir: PathBuf,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl OwnCluster {
    /// Starts `size` nodes and joins them to the first.
    pub fn start(size: usize) -> anyhow::Result<Self> {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let home = std::env::temp_dir().join(format!("ledgerhook-cluster-{}", &tag[..12]));
        std::fs::create_dir_all(&home)?;
        write_cookie(&home, &uuid::Uuid::new_v4().simple().to_string())?;
        let mut nodes = Vec::with_capacity(size);
        for index in 0..size {
            let dir = home.join(format!("node{index}"));
            std::fs::create_dir_all(&dir)?;
            // No plugins: the management plugin would want ports of its own.
            std::fs::write(dir.join("enabled_plugins"), "[].")?;
            nodes.push(Node {
                name: format!("lhc{}n{index}@localhost", &tag[..10]),
                port: free_port()?,
                dist_port: free_port()?,
                dir,
            });
        }
        let cluster = Self { home, nodes };
        for index in 0..size {
            cluster.start_node(index)?;
        }
        for index in 1..size {
            let node = cluster.nodes[index].name.clone();
            cluster.ctl(&node, &["stop_app"])?;
            cluster.ctl(&node, &["join_cluster", &cluster.nodes[0].name])?;
            cluster.ctl(&node, &["start_app"])?;
        }
        for node in &cluster.nodes {
            cluster.ctl(&node.name, &["await_startup"])?;
        }
        Ok(cluster)
    }

    /// Every node's URL, comma-separated, as `AMQP_URL` takes them.
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(|node| format!("amqp://guest:guest@127.0.0.1:{}/%2f", node.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Starts node `index` (again, with its data) and waits for its port.
    pub fn start_node(&self, index: usize) -> anyhow::Result<()> {
        let node = &self.nodes[index];
        let path = |name: &str| node.dir.join(name).display().to_string();
        let status = Command::new(format!("{BIN}/rabbitmq-server"))
            .arg("-detached")
            .current_dir(&node.dir)
            .env("HOME", &self.home)
            .env("RABBITMQ_NODENAME", &node.name)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", node.port.to_string())
            .env("RABBITMQ_DIST_PORT", node.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", path("mnesia"))
            .env("RABBITMQ_LOG_BASE", path("log"))
            .env("RABBITMQ_PID_FILE", path("pid"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", path("enabled_plugins"))
            .env("RABBITMQ_CONFIG_FILE", path("rabbitmq.conf"))
            // A hung node is declared down after net_ticktime (60 s by
            // default): until then its quorum queues elect no new leader.
            // The README's "Beyond one machine" asks clusters for the same.
            .env(
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                format!("-kernel net_ticktime {NET_TICKTIME_SECS}"),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("starting rabbitmq-server")?;
        if !status.success() {
            bail!("rabbitmq-server -detached failed: {status}");
        }
        let deadline = Instant::now() + START_TIMEOUT;
        while std::net::TcpStream::connect(("127.0.0.1", node.port)).is_err() {
            if Instant::now() > deadline {
                bail!("RabbitMQ node {} did not open its port in time", node.name);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// `rabbitmqctl -n NODE ARGS...` with the cluster's cookie; its output.
    pub fn ctl(&self, node: &str, args: &[&str]) -> anyhow::Result<String> {
        let output = Command::new(format!("{BIN}/rabbitmqctl"))
            .env("HOME", &self.home)
            .args(["-n", node])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .context("running rabbitmqctl")?;
        if !output.status.success() {
            bail!(
                "rabbitmqctl -n {node} {args:?} failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Which node leads quorum queue `queue`, asked of node `ask` (a live one).
    pub fn leader_of(&self, queue: &str, ask: usize) -> anyhow::Result<usize> {
        let listed = self.ctl(
            &self.nodes[ask].name,
            &["-q", "--no-table-headers", "list_queues", "name", "leader"],
        )?;
        let leader = listed
            .lines()
            .filter_map(|line| line.split_once('\t'))
            .find(|(name, _)| *name == queue)
            .map(|(_, leader)| leader.trim().to_owned())
            .with_context(|| format!("no queue {queue} in {listed}"))?;
        self.nodes
            .iter()
            .position(|node| node.name == leader)
            .with_context(|| format!("leader {leader} is none of this cluster's nodes"))
    }

    /// The Erlang VM's process id of node `index`.
    fn pid(&self, index: usize) -> anyhow::Result<String> {
        let pid = std::fs::read_to_string(self.nodes[index].dir.join("pid"))
            .context("reading the node's pid file")?;
        Ok(pid.trim().to_owned())
    }

    /// `kill -SIGNAL` node `index`'s VM: `KILL` to crash it, `STOP` to hang
    /// it, `CONT` to let it go on.
    pub fn signal(&self, index: usize, signal: &str) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid(index)?])
            .status()?;
        anyhow::ensure!(status.success(), "kill -{signal} failed: {status}");
        Ok(())
    }

    /// Stops node `index` cleanly (a rolling restart's step).
    pub fn stop_node(&self, index: usize) -> anyhow::Result<()> {
        self.ctl(&self.nodes[index].name, &["stop"]).map(drop)
    }
}

fn write_cookie(home: &Path, cookie: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = home.join(".erlang.cookie");
    std::fs::write(&path, cookie)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400))?;
    Ok(())
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        for index in 0..self.nodes.len() {
            // A frozen node would not stop; a crashed one has nothing to stop.
            let _ = self.signal(index, "CONT");
            if self.stop_node(index).is_err() {
                let _ = self.signal(index, "KILL");
            }
        }
        let _ = std::fs::remove_dir_all(&self.home);
    }
}
