//! Test worlds carry their birth time in their names, so a test run can
//! remove what earlier, killed runs left behind (their drop never ran).
//!
//! Left-over quorum queues are not harmless: every one is a Raft group the
//! shared RabbitMQ node recovers at boot, and a few hundred of them kept it
//! from completing AMQP handshakes. Only worlds older than [`STALE_AFTER`]
//! are removed, so parallel test binaries never sweep each other.

use std::process::{Command, Stdio};
use std::sync::Once;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::PgPool;

/// No test runs this long; anything older was abandoned.
const STALE_AFTER: Duration = Duration::from_secs(2 * 60 * 60);

pub const QUEUE_PREFIX_STEM: &str = "lhtest.";
pub const DATABASE_STEM: &str = "ledgerhook_test_";

/// `<stem><unix seconds>_<tag>`: the birth time leads, so it can be read back.
pub fn world_name(stem: &str, separator: char, tag: &str) -> String {
    format!("{stem}{}{separator}{tag}", unix_now())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// Whether a name under `stem` belongs to an abandoned world. Names without a
/// birth time come from before it was recorded: abandoned too.
fn is_stale(name: &str, stem: &str) -> bool {
    let Some(rest) = name.strip_prefix(stem) else {
        return false;
    };
    let born: Option<u64> = rest
        .split(['.', '_'])
        .next()
        .filter(|digits| digits.len() == 10)
        .and_then(|digits| digits.parse().ok());
    match born {
        Some(born) => unix_now().saturating_sub(born) > STALE_AFTER.as_secs(),
        None => true,
    }
}

static SWEEP: Once = Once::new();

/// Once per test process: drops abandoned test databases on the shared
/// server and deletes abandoned test queues and exchanges. Best effort: a
/// failure is reported, never fatal.
pub fn sweep_once(admin_database_url: &str, amqp_url: &str) {
    SWEEP.call_once(|| {
        let admin = admin_database_url.to_owned();
        let amqp = amqp_url.to_owned();
        let swept = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(sweep(&admin, &amqp))
        })
        .join();
        match swept {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => eprintln!("removed {n} abandoned test databases/queues"),
            Ok(Err(e)) => eprintln!("sweeping abandoned test worlds: {e:#}"),
            Err(_) => eprintln!("sweeping abandoned test worlds panicked"),
        }
    });
}

async fn sweep(admin: &str, amqp_url: &str) -> anyhow::Result<usize> {
    let mut removed = 0;
    let pool = PgPool::connect(admin).await?;
    let databases: Vec<String> =
        sqlx::query_scalar("select datname from pg_database where starts_with(datname, $1)")
            .bind(DATABASE_STEM)
            .fetch_all(&pool)
            .await?;
    for name in databases.iter().filter(|n| is_stale(n, DATABASE_STEM)) {
        // The name came from the catalogue and matched our stem; quote anyway.
        let drop = format!(
            "drop database if exists \"{}\" with (force)",
            name.replace('"', "")
        );
        sqlx::query(&drop).execute(&pool).await?;
        removed += 1;
    }

    let queues = rabbitmqctl_names("list_queues");
    let exchanges = rabbitmqctl_names("list_exchanges");
    let stale_queues: Vec<_> = queues
        .iter()
        .filter(|n| is_stale(n, QUEUE_PREFIX_STEM))
        .collect();
    let stale_exchanges: Vec<_> = exchanges
        .iter()
        .filter(|n| is_stale(n, QUEUE_PREFIX_STEM))
        .collect();
    if stale_queues.is_empty() && stale_exchanges.is_empty() {
        return Ok(removed);
    }
    let connection = ledgerhook_runtime::amqp::connect(amqp_url, "ledgerhook-tests-sweep").await?;
    let channel = connection.create_channel().await?;
    for queue in stale_queues {
        channel
            .queue_delete(queue.as_str().into(), Default::default())
            .await?;
        removed += 1;
    }
    for exchange in stale_exchanges {
        channel
            .exchange_delete(exchange.as_str().into(), Default::default())
            .await?;
        removed += 1;
    }
    Ok(removed)
}

/// Names listed by `rabbitmqctl <what> name`; none, said once, where it
/// cannot run (it needs root on Debian). A test's own queues are deleted
/// without it (see `TestEnv`'s drop); only a killed run's stay behind.
pub fn rabbitmqctl_names(what: &str) -> Vec<String> {
    static SAID: Once = Once::new();
    let listed = Command::new("rabbitmqctl")
        .args([what, "--quiet", "--no-table-headers", "name"])
        .stderr(Stdio::null())
        .output();
    match listed {
        Ok(listed) if listed.status.success() => String::from_utf8_lossy(&listed.stdout)
            .lines()
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => {
            SAID.call_once(|| {
                eprintln!(
                    "rabbitmqctl cannot run here (not root?): queues left by killed test runs are not swept"
                );
            });
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_old_or_undated_worlds_of_ours_are_stale() {
        let fresh = world_name(QUEUE_PREFIX_STEM, '.', "abc");
        assert!(!is_stale(&format!("{fresh}.deliveries"), QUEUE_PREFIX_STEM));
        let old = unix_now() - STALE_AFTER.as_secs() - 10;
        assert!(is_stale(
            &format!("lhtest.{old}.abc.wait.1000ms"),
            QUEUE_PREFIX_STEM
        ));
        assert!(is_stale(
            "lhtest.0123456789abcdef.deliveries",
            QUEUE_PREFIX_STEM
        ));
        assert!(!is_stale("ledgerhook.deliveries", QUEUE_PREFIX_STEM));
        let fresh_db = world_name(DATABASE_STEM, '_', "abc");
        assert!(!is_stale(&fresh_db, DATABASE_STEM));
        assert!(is_stale(
            &format!("ledgerhook_test_{old}_abc"),
            DATABASE_STEM
        ));
        assert!(!is_stale("ledgerhook", DATABASE_STEM));
    }
}
