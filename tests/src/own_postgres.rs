//! A PostgreSQL server of a test's own (its own data directory and port), so
//! a fault test can stop and start it without disturbing anything else on
//! the machine. Uses the server binaries of the installed PostgreSQL.
//! [`OwnPostgres::start_with_tls`] turns on `ssl` with a test's certificate.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

use crate::tls::{ServerCert, write_pem};

pub struct OwnPostgres {
    dir: PathBuf,
    bin: PathBuf,
    pub port: u16,
    as_postgres: bool,
    tls: bool,
    /// More `-c name=value` server settings (a primary's synchronous standby).
    settings: String,
}

impl OwnPostgres {
    /// Creates a cluster in a fresh directory and starts it on a free port.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(None)
    }

    /// The same, with `ssl=on` presenting `cert`. Plain connections are
    /// still accepted (initdb's `host ... trust` lines match both), so a
    /// test asks `pg_stat_ssl` whether a connection really is TLS.
    pub fn start_with_tls(cert: &ServerCert) -> anyhow::Result<Self> {
        Self::start_with(Some(cert))
    }

    fn start_with(cert: Option<&ServerCert>) -> anyhow::Result<Self> {
        let versions = std::fs::read_dir("/usr/lib/postgresql")
            .context("finding the PostgreSQL server binaries")?;
        let bin = versions
            .filter_map(Result::ok)
            .map(|entry| entry.path().join("bin"))
            .filter(|bin| bin.join("initdb").exists())
            .max()
            .context("no initdb under /usr/lib/postgresql")?;
        // PostgreSQL refuses to run as root; run it as the postgres user then.
        let as_postgres = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        let dir =
            std::env::temp_dir().join(format!("ledgerhook-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        if as_postgres {
            run(Command::new("chown").args(["postgres:postgres"]).arg(&dir))?;
        }
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        if let Some(cert) = cert {
            // The server reads them as its own user, and refuses a key that
            // anyone else can read.
            write_pem(&dir.join("server.crt"), &cert.cert_pem, false)?;
            write_pem(&dir.join("server.key"), &cert.key_pem, true)?;
            if as_postgres {
                run(Command::new("chown")
                    .args(["postgres:postgres", "server.crt", "server.key"])
                    .current_dir(&dir))?;
            }
        }
        let server = Self {
            dir,
            bin,
            port,
            as_postgres,
            tls: cert.is_some(),
            settings: String::new(),
        };
        server.run_tool(
            "initdb",
            &[
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
                &server.data(),
            ],
        )?;
        server.resume()?;
        Ok(server)
    }

    /// A primary whose commits wait for a synchronous standby named
    /// `standby` (see [`OwnPostgres::standby_of`]): a commit answered is on
    /// both servers.
    pub fn start_primary() -> anyhow::Result<Self> {
        let mut primary = Self::start_with(None)?;
        primary.settings = " -c synchronous_standby_names=standby -c synchronous_commit=on".into();
        primary.stop()?;
        primary.resume()?;
        Ok(primary)
    }

    /// A streaming standby of `primary`, copied with `pg_basebackup` into a
    /// directory of its own and started on a port of its own, reporting as
    /// `standby` (so the primary's commits wait for it).
    pub fn standby_of(primary: &Self) -> anyhow::Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("ledgerhook-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        if primary.as_postgres {
            run(Command::new("chown").args(["postgres:postgres"]).arg(&dir))?;
        }
        let standby = Self {
            dir,
            bin: primary.bin.clone(),
            port: TcpListener::bind("127.0.0.1:0")?.local_addr()?.port(),
            as_postgres: primary.as_postgres,
            tls: false,
            settings: String::new(),
        };
        standby.run_tool(
            "pg_basebackup",
            &[
                "-d",
                &format!(
                    "host=127.0.0.1 port={} user=postgres application_name=standby",
                    primary.port
                ),
                "-D",
                &standby.data(),
                "-R",
                "-X",
                "stream",
                "--no-sync",
            ],
        )?;
        standby.resume()?;
        Ok(standby)
    }

    /// Makes a standby the primary (`pg_ctl promote`, waiting for it).
    pub fn promote(&self) -> anyhow::Result<()> {
        self.run_tool("pg_ctl", &["-D", &self.data(), "-w", "promote"])
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    /// `postgres://postgres@127.0.0.1:<port>/<database>`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Starts (again) and waits until it accepts connections.
    pub fn resume(&self) -> anyhow::Result<()> {
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200{}",
            self.port,
            self.dir.display(),
            self.settings
        );
        if self.tls {
            options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                self.dir.join("server.crt").display(),
                self.dir.join("server.key").display()
            ));
        }
        let log = self.dir.join("server.log").display().to_string();
        self.run_tool(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ],
        )
    }

    /// Stops at once, as a crash or a failover would look to clients.
    pub fn stop(&self) -> anyhow::Result<()> {
        self.run_tool(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        )
    }

    fn run_tool(&self, tool: &str, args: &[&str]) -> anyhow::Result<()> {
        let path = self.bin.join(tool);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        run(command.args(args).current_dir(&self.dir))
    }
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self.run_tool(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
