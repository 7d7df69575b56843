//! A test's world: its own database and queue prefix, removed on drop, and
//! what a test reads off it (counts, balances, queue depths).

use std::time::Duration;

use anyhow::{Context as _, bail};
use ledgerhook_runtime::config::{DEFAULT_AMQP_URL, process_env};
use sqlx::PgPool;

use crate::eventually::{eventually, seen, within};
use crate::leftovers;
use crate::webhook::TEST_SECRET;

const ADMIN_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// How long [`TestEnv::count`] keeps retrying a query that fails (a fault
/// test's own server may just have restarted under the pool's connections).
const COUNT_RETRIES_FOR: Duration = Duration::from_secs(20);
/// How long drop may spend deleting a test's queues and exchange.
const BROKER_CLEANUP_TIMEOUT: Duration = Duration::from_secs(30);

/// One test's database and queue prefix. Dropped last (declare it first):
/// its drop removes the database and the queues.
pub struct TestEnv {
    pub database_url: String,
    pub amqp_url: String,
    pub queue_prefix: String,
    pub pool: PgPool,
    db_name: String,
    admin_url: String,
    pub(super) http: reqwest::Client,
    /// The wait queues the workers started here declare, deleted on drop
    /// (see [`TestEnv::note_wait_queues`]).
    wait_queues: std::sync::Mutex<std::collections::BTreeSet<String>>,
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
        let pool =
            ledgerhook_store::db::connect_and_migrate(&database_url, 8, "ledgerhook-tests").await?;
        Ok(Self {
            database_url,
            amqp_url,
            queue_prefix: leftovers::world_name(leftovers::QUEUE_PREFIX_STEM, '.', &tag[..12]),
            pool,
            db_name,
            admin_url: admin.to_owned(),
            http: reqwest::Client::new(),
            wait_queues: std::sync::Mutex::default(),
        })
    }

    /// The environment every binary of this world runs with.
    /// Notes the wait queues a worker started with `env` declares, read off
    /// its own configuration, so that drop can delete them. They are named by
    /// delay, and AMQP cannot list queues; `rabbitmqctl` can, but only for
    /// root (a developer's own account on Debian cannot run it, and leaked
    /// wait queues, five per test, once piled up until RabbitMQ's file
    /// handles ran out and it stopped answering handshakes).
    pub(super) fn note_wait_queues(&self, env: &[(String, String)]) {
        let lookup = |name: &str| {
            env.iter()
                .rev()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        let config = match ledgerhook_worker::config::Config::from_reader(
            ledgerhook_runtime::config::EnvReader::new(lookup),
        ) {
            Ok(config) => config,
            // The worker refuses it too, and declares nothing.
            Err(e) => {
                return eprintln!("the worker's settings do not read ({e}): no wait queues noted");
            }
        };
        let topology = ledgerhook_runtime::amqp::Topology::new(&config.queue_prefix);
        let mut noted = self.wait_queues.lock().expect("wait queue list");
        noted.extend(
            config
                .retry
                .delays()
                .into_iter()
                .map(|delay| topology.wait_queue(delay)),
        );
    }

    pub(super) fn base_env(&self) -> Vec<(String, String)> {
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

    /// Messages in a queue of this test's prefix (ready ones; a consumer's
    /// unacknowledged ones are not counted).
    pub async fn queue_depth(&self, queue: &str) -> anyhow::Result<u32> {
        let connection =
            ledgerhook_runtime::amqp::connect(&self.amqp_url, "ledgerhook-tests").await?;
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

    /// A count; a query that fails is retried for a few seconds, since a
    /// fault test's own server may just have restarted under the pool's
    /// connections.
    pub async fn count(&self, sql: &str) -> i64 {
        let counted = within(COUNT_RETRIES_FOR, async || {
            sqlx::query_scalar(sql)
                .fetch_one(&self.pool)
                .await
                .map_err(|e| format!("`{sql}`: {e}"))
        })
        .await;
        counted.unwrap_or_else(|e| panic!("{e}"))
    }

    /// Waits until `sql` (a count) is `expected`; fails after `timeout`
    /// with the count last seen.
    pub async fn wait_for_count(&self, sql: &str, expected: i64, timeout: Duration) {
        eventually(timeout, async || {
            let count = self.count(sql).await;
            seen(count, count == expected)
                .map_err(|seen| format!("`{sql}` is {seen}, not {expected}"))
        })
        .await;
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
        let topology = ledgerhook_runtime::amqp::Topology::new(&self.queue_prefix);
        let prefix = self.queue_prefix.clone();
        let mut noted_wait_queues =
            std::mem::take(&mut *self.wait_queues.lock().expect("wait queue list"));
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
                // Bounded: a broker that stops answering fails the cleanup
                // loudly instead of holding the test forever.
                tokio::time::timeout(BROKER_CLEANUP_TIMEOUT, async {
                    let connection =
                        ledgerhook_runtime::amqp::connect(&amqp_url, "ledgerhook-tests").await?;
                    let mut channel = connection.create_channel().await?;
                    // The work and parked queues, and the wait queues: those
                    // noted from the workers' settings, and any other
                    // `rabbitmqctl` lists (where it can run).
                    noted_wait_queues.extend(wait_queues(&prefix));
                    let queues = [topology.queue.clone(), topology.parked_queue.clone()]
                        .into_iter()
                        .chain(noted_wait_queues);
                    for queue in queues {
                        let deleted = channel
                            .queue_delete(queue.as_str().into(), Default::default())
                            .await;
                        if deleted.is_err() {
                            // A queue the worker never got to declare: the
                            // refusal closed the channel.
                            channel = connection.create_channel().await?;
                        }
                    }
                    channel
                        .exchange_delete(topology.exchange.as_str().into(), Default::default())
                        .await?;
                    anyhow::Ok(())
                })
                .await
                .context("the broker did not answer the cleanup in time")??;
                anyhow::Ok(())
            })
        });
        if let Ok(Err(e)) = cleanup.join() {
            eprintln!("test cleanup incomplete: {e:#}");
        }
    }
}

/// The wait queues under `prefix`, as `rabbitmqctl` lists them (none where
/// it cannot run): any a worker declared beyond those noted from settings.
fn wait_queues(prefix: &str) -> Vec<String> {
    let wait_prefix = format!("{prefix}.wait.");
    let mut queues = leftovers::rabbitmqctl_names("list_queues");
    queues.retain(|name| name.starts_with(&wait_prefix));
    queues
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
