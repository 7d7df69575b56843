//! `ledgerhook-admin`: the operator's command, one subcommand per runbook.
//!
//! Layout: [`cli`] (the command line, parsed before anything is touched),
//! [`deliveries`] (parked deliveries, show, redrive, replay, expiring
//! credits), [`control`] (the pause switch and the status), [`credits`]
//! (duplicates, revoke, manual grant, a user's audit), [`review`] (orders
//! held for review: list, release, reject), [`replay`] (the
//! broker side of redrive and replay), [`notifications`] (the grant
//! notifications: parked ones, resending), [`reconcile`] (asking Crossmint about
//! orders whose payment never arrived), [`retention`] (the retention job,
//! once), [`erasure`] (erasing a buyer under a pseudonym), [`migrate`] (the schema as a deploy
//! step of its own), [`docs`] (shell completions and manual pages, from the
//! command line alone), [`terminal`] (control characters from payloads
//! shown, never sent to the operator's terminal). Every command that changes something records it in
//! the audit trail (`ledgerhook_store::audit`) in the change's transaction.
//!
//! Each command returns a [`Printout`]: a JSON document for `--json` and the
//! same facts as text, plus a refusal code when it refused. A new command
//! is a variant in [`cli::Command`] and a handler returning a [`Printout`].

pub mod api_keys;
pub mod cli;
pub mod control;
pub mod credits;
pub mod deliveries;
pub mod docs;
pub mod erasure;
pub mod migrate;
pub mod notifications;
pub mod operators;
pub mod password;
pub mod reconcile;
pub mod replay;
pub mod retention;
pub mod review;
pub mod terminal;

use anyhow::Context as _;
use ledgerhook_runtime::amqp::Broker;
use ledgerhook_runtime::config::{DEFAULT_DATABASE_URL, DEFAULT_QUEUE_PREFIX, EnvReader};
pub use replay::{Action, Admin, DeliveryRow, Replayed, Selection};
use serde_json::Value;

use self::cli::{Cli, Command, DatabaseCommand};
use self::review::Verdict;

/// How long a command waits to reach PostgreSQL.
const DATABASE_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// What a command prints: `json` with `--json`, else `text`.
#[derive(Debug, Clone)]
pub struct Printout {
    pub json: Value,
    pub text: String,
    /// A refusal's machine-readable code (the exit status is then 3).
    pub refused: Option<&'static str>,
}

impl Printout {
    pub fn done(json: Value, text: String) -> Self {
        Self {
            json,
            text,
            refused: None,
        }
    }

    pub fn refused(code: &'static str, message: String, json: Value) -> Self {
        let mut json = json;
        if let Value::Object(map) = &mut json {
            map.insert("refused".into(), Value::String(code.into()));
            map.insert("message".into(), Value::String(message.clone()));
        }
        Self {
            json,
            text: format!("refused: {code}: {message}\n"),
            refused: Some(code),
        }
    }
}

/// Where the command's peers are, from the environment (read only once a
/// command runs; `--help` reads nothing).
pub struct Peers {
    pub database_url: String,
    pub queue_prefix: String,
    /// Read only by commands that talk to the broker.
    broker: Option<Broker>,
}

impl Peers {
    pub fn from_env(with_broker: bool) -> anyhow::Result<Self> {
        let mut env = EnvReader::from_process();
        let database_url = env.or_default("DATABASE_URL", DEFAULT_DATABASE_URL);
        let broker = with_broker.then(|| Broker::from_env(&mut env));
        let queue_prefix = env.or_default("QUEUE_PREFIX", DEFAULT_QUEUE_PREFIX);
        env.finish()?;
        Ok(Self {
            database_url,
            queue_prefix,
            broker,
        })
    }

    /// Peers given by the caller (the console, from its own configuration).
    pub fn new(database_url: String, queue_prefix: String, broker: Broker) -> Self {
        Self {
            database_url,
            queue_prefix,
            broker: Some(broker),
        }
    }

    pub fn broker(&self) -> anyhow::Result<&Broker> {
        self.broker
            .as_ref()
            .context("this command was started without the broker's settings")
    }
}

/// Whether `command` talks to the broker (redrive and replay publish;
/// status reads the work queue's depth).
pub fn needs_broker(command: &DatabaseCommand) -> bool {
    matches!(
        command,
        DatabaseCommand::Redrive(_)
            | DatabaseCommand::Replay { .. }
            | DatabaseCommand::Status
            | DatabaseCommand::Reconcile { .. }
            | DatabaseCommand::Pause { .. }
    )
}

/// Whether `command` changes something, and so must name its operator
/// (reconcile can grant credits).
pub fn changes_something(command: &Command) -> bool {
    matches!(
        command,
        Command::Database(
            DatabaseCommand::Pause { .. }
                | DatabaseCommand::Resume { .. }
                | DatabaseCommand::Revoke { .. }
                | DatabaseCommand::Release { .. }
                | DatabaseCommand::Reject { .. }
                | DatabaseCommand::Grant { .. }
                | DatabaseCommand::Reconcile { .. }
                | DatabaseCommand::EraseUser { .. }
                | DatabaseCommand::Retention {
                    command: cli::RetentionCommand::Run { dry_run: false },
                }
                | DatabaseCommand::Notifications {
                    resend_parked: true,
                    ..
                }
                | DatabaseCommand::Operator {
                    command: cli::OperatorCommand::Add { .. } | cli::OperatorCommand::Remove { .. },
                }
                | DatabaseCommand::ApiKey {
                    command: cli::ApiKeyCommand::Add { .. } | cli::ApiKeyCommand::Revoke { .. },
                }
        )
    )
}

/// Runs the parsed command. The environment is read only by the commands
/// that reach a peer: `completions` and `man` work from the command line
/// alone; `migrate` connects on its own, since the database may not exist
/// yet; the rest share one pool ([`run_on_database`]).
pub async fn run(cli: Cli) -> anyhow::Result<Printout> {
    let operator = cli.operator.as_deref();
    match &cli.command {
        Command::Completions { shell } => docs::completions(*shell),
        Command::Man { dir } => docs::man(dir.as_deref()),
        Command::Migrate => {
            let peers = Peers::from_env(false)?;
            migrate::migrate(&writable_url(&peers.database_url).await?, operator).await
        }
        Command::Database(command) => {
            let peers = Peers::from_env(needs_broker(command))?;
            run_on_database(command, operator, &peers).await
        }
    }
}

/// `url`, or with several hosts (libpq's form) the writable one's: a
/// command runs once, against whichever host is the primary now.
async fn writable_url(url: &str) -> anyhow::Result<String> {
    match ledgerhook_store::failover::Hosts::parse(url)? {
        None => Ok(url.to_owned()),
        Some(hosts) => {
            let found = hosts
                .find()
                .await
                .context("DATABASE_URL: none of its hosts is a writable PostgreSQL")?;
            Ok(hosts.url(found).to_owned())
        }
    }
}

/// Runs one of the runbooks' commands against the database (and the
/// broker, for those that need it).
async fn run_on_database(
    command: &DatabaseCommand,
    operator: Option<&str>,
    peers: &Peers,
) -> anyhow::Result<Printout> {
    // An operator waiting on a dead database gets the error in seconds, not
    // after sqlx's default 30 s.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(DATABASE_CONNECT_TIMEOUT)
        .connect(&writable_url(&peers.database_url).await?)
        .await
        .context("connecting to PostgreSQL")?;
    let printout = match command {
        DatabaseCommand::Parked { limit } => deliveries::parked(&pool, operator, *limit).await?,
        DatabaseCommand::Show { delivery_id } => {
            deliveries::show(&pool, operator, delivery_id).await?
        }
        DatabaseCommand::Redrive(wait) => {
            deliveries::replay(&pool, peers, operator, Selection::Parked, wait).await?
        }
        DatabaseCommand::Replay {
            delivery_ids,
            from,
            to,
            wait,
        } => {
            let selection = match (from, to) {
                (Some(from), Some(to)) => Selection::Between(*from, *to),
                _ => Selection::Ids(delivery_ids.clone()),
            };
            deliveries::replay(&pool, peers, operator, selection, wait).await?
        }
        DatabaseCommand::ExpireCredits => deliveries::expire_credits(&pool, operator).await?,
        DatabaseCommand::Pause {
            why,
            wait_secs: _,
            provider: Some(provider),
        } => {
            control::switch_for(
                &pool,
                operator,
                Some(provider.payment_provider()),
                true,
                &why.reason,
            )
            .await?
        }
        DatabaseCommand::Pause {
            why,
            wait_secs,
            provider: None,
        } => {
            let mut printout = control::switch(&pool, operator, true, &why.reason).await?;
            if *wait_secs > 0 {
                control::wait_for_workers_to_leave(
                    peers,
                    std::time::Duration::from_secs(*wait_secs),
                    &mut printout,
                )
                .await?;
            }
            printout
        }
        DatabaseCommand::Resume { why, provider } => {
            control::switch_for(
                &pool,
                operator,
                provider.map(cli::PausedProvider::payment_provider),
                false,
                &why.reason,
            )
            .await?
        }
        DatabaseCommand::Status => control::status(&pool, peers, operator).await?,
        DatabaseCommand::Duplicates { since } => {
            credits::duplicates(&pool, operator, since.0).await?
        }
        DatabaseCommand::Held { limit } => review::held(&pool, operator, *limit).await?,
        DatabaseCommand::Release { order, why } => {
            review::resolve(&pool, Verdict::Release, operator, order, &why.reason).await?
        }
        DatabaseCommand::Reject { order, why } => {
            review::resolve(&pool, Verdict::Reject, operator, order, &why.reason).await?
        }
        DatabaseCommand::Revoke { order, why } => {
            credits::revoke(&pool, operator, order, &why.reason).await?
        }
        DatabaseCommand::Grant {
            user,
            credits,
            idempotency_key,
            order,
            email,
            why,
        } => {
            let request = ledgerhook_store::credits::ManualGrant {
                user_id: user,
                credits: *credits,
                reason: &why.reason,
                idempotency_key,
                order: order.as_deref(),
                actor: operator.unwrap_or("unknown"),
                email: email.as_deref(),
            };
            credits::grant(&pool, request).await?
        }
        DatabaseCommand::Audit { user } => credits::audit(&pool, operator, user).await?,
        DatabaseCommand::Notifications {
            resend_parked,
            reason,
            limit,
        } => {
            let resend = resend_parked.then_some(reason.as_deref().unwrap_or_default());
            notifications::notifications(&pool, operator, resend, *limit).await?
        }
        DatabaseCommand::Operator { command } => operators::run(&pool, operator, command).await?,
        DatabaseCommand::ApiKey { command } => api_keys::run(&pool, operator, command).await?,
        DatabaseCommand::Retention {
            command: cli::RetentionCommand::Run { dry_run },
        } => retention::run(&pool, operator, *dry_run).await?,
        DatabaseCommand::EraseUser { user, why } => {
            erasure::erase_user(&pool, operator, user, &why.reason).await?
        }
        DatabaseCommand::Reconcile {
            provider,
            order,
            dry_run,
            older_than,
            within,
            limit,
            wait,
        } => {
            // One order named is asked about whatever its age.
            let scope = ledgerhook_worker::reconcile::Scope {
                older_than: if order.is_some() {
                    std::time::Duration::ZERO
                } else {
                    *older_than
                },
                within: if order.is_some() {
                    std::time::Duration::from_secs(366 * 24 * 3600)
                } else {
                    *within
                },
                limit: *limit,
            };
            let only = ledgerhook_worker::reconcile::Only {
                order: order.as_deref(),
                dry_run: *dry_run,
            };
            reconcile::reconcile(&pool, peers, operator, *provider, scope, only, wait).await?
        }
    };
    pool.close().await;
    Ok(printout)
}
