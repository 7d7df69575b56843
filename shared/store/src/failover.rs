//! A `DATABASE_URL` naming several hosts, libpq's way
//! (`postgres://u@h1:5432,h2:5433/db?target_session_attrs=read-write`): a
//! primary and its standbys. sqlx connects to one host, so the services
//! find the writable one themselves and follow it when it changes:
//!
//! - at start, the hosts are tried in order and the first that answers
//!   `pg_is_in_recovery() = false` is used (`target_session_attrs=any`:
//!   the first that answers at all);
//! - a watcher asks the pool every [`CHECK_EVERY`]; when the database is
//!   unreachable or read-only, it looks for the writable host again and,
//!   found elsewhere, points the pool's new connections at it
//!   (`Pool::set_connect_options`). Connections opened before the switch
//!   are closed when next taken from the pool (`before_acquire`), so none
//!   keeps talking to a demoted primary.
//!
//! A single host is left entirely to sqlx: nothing here runs then.

use std::str::FromStr as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions as _, PgPool};

/// How often the watcher asks whether the pool still reaches a writable host.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);
/// How long one host may take to answer the watcher or a start-up probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The hosts of a multi-host URL, each as a single-host URL.
#[derive(Debug, Clone)]
pub struct Hosts {
    urls: Vec<String>,
    /// `target_session_attrs=read-write` (the default here): only a host
    /// out of recovery will do.
    writable_only: bool,
}

impl Hosts {
    /// `None` for a URL with one host (sqlx handles it as it is).
    pub fn parse(url: &str) -> anyhow::Result<Option<Self>> {
        let (scheme, rest) = url.split_once("://").context("DATABASE_URL is not a URL")?;
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let (user_info, host_list) = match authority.rsplit_once('@') {
            Some((user_info, hosts)) => (Some(user_info), hosts),
            None => (None, authority),
        };
        let hosts: Vec<&str> = host_list.split(',').filter(|h| !h.is_empty()).collect();
        if hosts.len() < 2 {
            return Ok(None);
        }
        let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
        let mut writable_only = true;
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .filter(|pair| match pair.split_once('=') {
                Some(("target_session_attrs", value)) => {
                    writable_only = value != "any";
                    false
                }
                _ => true,
            })
            .collect();
        let query = if kept.is_empty() {
            String::new()
        } else {
            format!("?{}", kept.join("&"))
        };
        let urls = hosts
            .iter()
            .map(|host| match user_info {
                Some(user_info) => format!("{scheme}://{user_info}@{host}{path}{query}"),
                None => format!("{scheme}://{host}{path}{query}"),
            })
            .collect();
        Ok(Some(Self {
            urls,
            writable_only,
        }))
    }

    /// The host at `index` as a single-host URL.
    pub fn url(&self, index: usize) -> &str {
        &self.urls[index]
    }

    /// The first host, in order, that will do (writable, unless `any`), and
    /// its index.
    pub async fn find(&self) -> Option<usize> {
        for (index, url) in self.urls.iter().enumerate() {
            if self.usable(url).await {
                return Some(index);
            }
        }
        None
    }

    async fn usable(&self, url: &str) -> bool {
        let probe = async {
            let mut connection = PgConnectOptions::from_str(url).ok()?.connect().await.ok()?;
            let in_recovery: bool = sqlx::query_scalar("select pg_is_in_recovery()")
                .fetch_one(&mut connection)
                .await
                .ok()?;
            let _ = sqlx::Connection::close(connection).await;
            Some(!in_recovery || !self.writable_only)
        };
        tokio::time::timeout(PROBE_TIMEOUT, probe)
            .await
            .ok()
            .flatten()
            .unwrap_or(false)
    }
}

/// When the pool last moved to another host, shared with its
/// `before_acquire` check: connections older than the move are closed.
#[derive(Debug, Clone)]
pub struct Switched {
    epoch: Instant,
    /// Milliseconds from `epoch` to the last move (0: never moved).
    at_ms: Arc<AtomicU64>,
}

impl Default for Switched {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            at_ms: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Switched {
    fn mark(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.at_ms.store(ms.max(1), Ordering::Release);
    }

    /// Whether a connection `age` old was opened after the last move.
    pub fn is_current(&self, age: Duration) -> bool {
        let at_ms = self.at_ms.load(Ordering::Acquire);
        if at_ms == 0 {
            return true;
        }
        let since_move = self
            .epoch
            .elapsed()
            .saturating_sub(Duration::from_millis(at_ms));
        age <= since_move
    }
}

/// Follows the writable host for `pool` until the process ends.
pub fn watch(
    pool: PgPool,
    hosts: Hosts,
    mut current: usize,
    switched: Switched,
    application_name: String,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let check = tokio::time::timeout(
                PROBE_TIMEOUT,
                sqlx::query_scalar::<_, bool>("select pg_is_in_recovery()").fetch_one(&pool),
            )
            .await;
            if matches!(check, Ok(Ok(false)))
                || (!hosts.writable_only && matches!(check, Ok(Ok(_))))
            {
                continue;
            }
            let Some(found) = hosts.find().await else {
                tracing::warn!("DATABASE_URL: no writable host answers; looking again");
                continue;
            };
            if found == current {
                continue;
            }
            match PgConnectOptions::from_str(hosts.url(found)) {
                Ok(options) => {
                    pool.set_connect_options(options.application_name(&application_name));
                    switched.mark();
                    tracing::warn!(
                        from = current,
                        to = found,
                        "DATABASE_URL: the writable host changed; new connections go to it"
                    );
                    current = found;
                }
                Err(e) => tracing::error!(error = %e, "DATABASE_URL: a host's URL does not parse"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_libpq_multi_host_url_becomes_one_url_per_host() {
        let hosts = Hosts::parse(
            "postgres://app:s3cret@h1:5432,h2:5433/ledgerhook?sslmode=require&target_session_attrs=read-write",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            hosts.url(0),
            "postgres://app:s3cret@h1:5432/ledgerhook?sslmode=require"
        );
        assert_eq!(
            hosts.url(1),
            "postgres://app:s3cret@h2:5433/ledgerhook?sslmode=require"
        );
        assert!(hosts.writable_only);
        let any = Hosts::parse("postgres://h1,h2/db?target_session_attrs=any")
            .unwrap()
            .unwrap();
        assert_eq!(any.url(1), "postgres://h2/db");
        assert!(!any.writable_only);
        assert!(Hosts::parse("postgres://u@h1:5432/db").unwrap().is_none());
    }

    #[test]
    fn connections_opened_before_a_move_are_not_current() {
        let switched = Switched::default();
        assert!(
            switched.is_current(Duration::from_secs(3600)),
            "never moved"
        );
        std::thread::sleep(Duration::from_millis(20));
        switched.mark();
        std::thread::sleep(Duration::from_millis(20));
        assert!(!switched.is_current(Duration::from_millis(30)));
        assert!(switched.is_current(Duration::from_millis(5)));
    }
}
