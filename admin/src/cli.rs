//! `ledgerhook-admin`'s command line: one subcommand per runbook, each with
//! its own `--help`. Parsing touches nothing: the database and the broker
//! are reached only once a command runs, and only by commands that need them.
//!
//! [`command`] is the parser the binary uses; the shell completions and the
//! manual pages (`completions`, `man`) are generated from it too, so they
//! cannot differ from what the binary takes.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Args, CommandFactory as _, Parser, Subcommand};

/// The version `--version` prints and the manual pages carry.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The command line as the binary parses it: [`Cli`] with `--version`.
/// Completions and manual pages are generated from this, never from a copy.
pub fn command() -> clap::Command {
    Cli::command().version(VERSION)
}

#[derive(Debug, Parser)]
#[command(
    name = "ledgerhook-admin",
    about = "What an operator does with ledgerhook: deliveries, the pause switch, revokes, manual grants, reconcile, audits",
    long_about = "What an operator does with ledgerhook: deliveries, the pause switch, revokes, \
                  manual grants, reconcile, audits.\n\nUses DATABASE_URL, and for commands that talk to the \
                  broker AMQP_URL, AMQP_CA_FILE and QUEUE_PREFIX, like the worker. Every command \
                  but completions and man writes a row to operator_actions (who, why, when, what changed); a command that \
                  changes something writes it in the same transaction as the change.\n\nExit \
                  status: 0 done (or nothing to do), 1 failed, 2 bad usage, 3 refused (the \
                  printout names the code)."
)]
pub struct Cli {
    /// Print one JSON document instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    /// Who runs the command (recorded in the audit row); required by the
    /// commands that change something.
    #[arg(long, global = true, env = "LEDGERHOOK_OPERATOR")]
    pub operator: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands, by what they need: the runbooks' commands share one
/// connection to the database; `migrate` makes its own (the database may
/// not exist yet); `completions` and `man` need nothing but the command
/// line. The help lists them in this order.
#[derive(Debug, Subcommand)]
pub enum Command {
    #[command(flatten)]
    Database(DatabaseCommand),
    /// Apply the database migrations this build embeds (creating the
    /// database if missing), for services started with
    /// RUN_MIGRATIONS=false. Prints what it applied; a second run applies
    /// nothing.
    Migrate,
    /// Print the shell completion script for SHELL to standard output.
    ///
    /// Generated from this build's command line, so it completes exactly
    /// the subcommands and options this binary takes. Touches nothing: no
    /// database, no broker, no audit row. Install it where the shell looks,
    /// e.g. `ledgerhook-admin completions bash >
    /// ~/.local/share/bash-completion/completions/ledgerhook-admin`.
    Completions {
        /// The shell the script is for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) to standard output, or write every page
    /// to a folder.
    ///
    /// Without --dir: the page of ledgerhook-admin itself
    /// (`ledgerhook-admin man | man -l -`). With --dir: that page
    /// (ledgerhook-admin.1) and one per subcommand
    /// (ledgerhook-admin-SUBCOMMAND.1), the folder made if missing, and the
    /// paths written printed. Touches nothing else: no database, no broker,
    /// no audit row.
    Man {
        /// Write every page into this folder, e.g. ~/.local/share/man/man1.
        #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
        dir: Option<PathBuf>,
    },
}

/// The commands that run against the database through one connection pool
/// (some talk to the broker too).
#[derive(Debug, Subcommand)]
pub enum DatabaseCommand {
    /// List parked (dead-letter) deliveries, newest first.
    Parked {
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// One delivery: its record, exact body and the order events it caused.
    Show {
        /// The sender's delivery id (svix-id).
        delivery_id: String,
    },
    /// Send every parked delivery to the work queue again.
    Redrive(#[command(flatten)] Wait),
    /// Send deliveries again by id or by time range; processed ones are
    /// reported, never resent (a replay cannot grant twice).
    Replay {
        /// The sender's delivery ids.
        #[arg(conflicts_with_all = ["from", "to"], required_unless_present = "from")]
        delivery_ids: Vec<String>,
        /// Received at or after (RFC 3339).
        #[arg(long, requires = "to")]
        from: Option<DateTime<Utc>>,
        /// Received before (RFC 3339).
        #[arg(long, requires = "from")]
        to: Option<DateTime<Utc>>,
        #[command(flatten)]
        wait: Wait,
    },
    /// Remove expired unspent credits now (the job the workers run).
    ExpireCredits,
    /// Runbook 5.2, step 1: stop every worker taking messages (within 2 s).
    /// The ingester keeps recording; deliveries wait in the queue.
    /// Then waits (`--wait-secs`) until no worker is attached to the work
    /// queue, so that nothing is being processed when it returns.
    ///
    /// With --provider, only that provider's deliveries wait (the workers
    /// set them aside unprocessed and look again every 30 s) while the
    /// others' are processed; nothing is waited for.
    Pause {
        #[command(flatten)]
        why: Why,
        /// Longest wait for the workers to finish what they hold and leave
        /// the work queue (0: do not wait).
        #[arg(long, default_value_t = 30)]
        wait_secs: u64,
        /// Pause only the deliveries of this provider's payments.
        #[arg(long, value_enum)]
        provider: Option<PausedProvider>,
    },
    /// Runbook 5.2, step 5: let the workers take messages again (with
    /// --provider: that provider's deliveries).
    Resume {
        #[command(flatten)]
        why: Why,
        /// Resume only this provider (paused with pause --provider).
        #[arg(long, value_enum)]
        provider: Option<PausedProvider>,
    },
    /// Whether processing is paused (since when, by whom) and the backlog.
    Status,
    /// Runbook 5.2, step 2: deliveries that hit already-granted orders,
    /// grouped by order.
    Duplicates {
        /// From when: RFC 3339, or an age such as 30m, 24h, 7d.
        #[arg(long, default_value = "24h", value_parser = parse_since)]
        since: Since,
    },
    /// Orders held for review (a payment that contradicts its order:
    /// amount, currency, user or package), the longest held first.
    Held {
        /// The most orders listed.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Release an order held for review: its credits, as recorded when it
    /// was created, are granted to its owner once (nothing if it granted
    /// already), and the hold is cleared.
    Release {
        /// The order's id at its provider (Crossmint's order id, Stripe's `cs_...`).
        order: String,
        #[command(flatten)]
        why: Why,
    },
    /// Reject the payment that put an order on hold: nothing is granted, an
    /// unpaid order is closed as failed, and the hold is cleared. Give the
    /// money back at the provider (its refund then changes nothing here).
    Reject {
        /// The order's id at its provider.
        order: String,
        #[command(flatten)]
        why: Why,
    },
    /// Runbook 5.2, step 3: take back an order's grant with a compensating
    /// entry. What was spent already is recorded as a shortfall, never
    /// taken below zero. A second revoke changes nothing.
    Revoke {
        /// The order's id at its provider (Crossmint's order id, Stripe's `cs_...`).
        order: String,
        #[command(flatten)]
        why: Why,
    },
    /// Runbook 5.3: grant credits by hand, once per idempotency key.
    Grant {
        #[arg(long)]
        user: String,
        /// Credits to add (positive).
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..=100_000_000))]
        credits: i64,
        /// The same key never grants twice; a repeat prints the first result.
        #[arg(long)]
        idempotency_key: String,
        /// The order (its provider's id) this grant stands in for: its terms apply
        /// (credit validity) and it is marked completed, so a late payment
        /// webhook cannot grant again.
        #[arg(long)]
        order: Option<String>,
        /// Email the buyer about it at this address (with --order; without
        /// it, the address the order's payment gave, if any).
        #[arg(long, requires = "order")]
        email: Option<String>,
        #[command(flatten)]
        why: Why,
    },
    /// Runbook 5.3: a user's balance, every movement with its cause, and
    /// their orders ("where are my credits").
    Audit { user: String },
    /// The grant notifications: counts by channel and state, the parked
    /// ones with their reasons; `--resend-parked` sends those again once
    /// the cause is fixed.
    Notifications {
        /// Make every parked notification due again (needs --operator and
        /// --reason).
        #[arg(long, requires = "reason")]
        resend_parked: bool,
        /// Why they are sent again (kept in the audit row).
        #[arg(long, requires = "resend_parked")]
        reason: Option<String>,
        /// The most parked notifications listed.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// The console's operators: add one (printing a one-time password once),
    /// list them, remove one (ending their sessions).
    Operator {
        #[command(subcommand)]
        command: OperatorCommand,
    },
    /// API keys for the product's backend, which may spend credits for a
    /// user it names (`Ledgerhook-User`): add one (printing the key once),
    /// list them, revoke one.
    ApiKey {
        #[command(subcommand)]
        command: ApiKeyCommand,
    },
    /// Retention: drop the bodies and personal fields of deliveries and
    /// sent notifications older than RETENTION_DAYS (default 90), keeping
    /// each body's SHA-256, the ids and the lineage; make the deliveries'
    /// monthly partitions ahead and drop old months once scrubbed. The
    /// workers run it every RETENTION_INTERVAL_SECS; this runs it now.
    Retention {
        #[command(subcommand)]
        command: RetentionCommand,
    },
    /// Erase a buyer: remove their personal data (delivery bodies and
    /// headers of their orders, notification addresses) and move every row
    /// keyed by their id (orders, ledger, balance, spends, usage,
    /// subscriptions, audit rows) to a new pseudonym `erased-<uuid>`, in one
    /// transaction: the ledger stays balanced, nothing maps the pseudonym
    /// back. Refused (USER_HAS_IN_FLIGHT_WORK) while an order awaits payment
    /// or review, or a subscription is live; USER_NOT_FOUND for an id no row
    /// names (an id erased before included). Given a pseudonym, scrubs what
    /// arrived for it since (a late payment's body) and keeps the pseudonym.
    EraseUser {
        /// The user's id, as the product names them.
        user: String,
        #[command(flatten)]
        why: Why,
    },
    /// Risk 2 (a webhook that never came): ask Crossmint about every order
    /// still waiting for its payment; a paid one is recorded as a delivery
    /// and granted through the workers, once, whatever webhook comes later.
    /// Needs CROSSMINT_SERVER_API_KEY (and CROSSMINT_API_URL) like the API.
    Reconcile {
        /// Whose payments: Crossmint's orders, or Stripe's (its undelivered
        /// events of the last 30 days, then its orders' Checkout Sessions).
        /// Stripe needs STRIPE_SECRET_KEY (and STRIPE_API_URL) like the API.
        #[arg(long, value_enum, default_value = "crossmint")]
        provider: crate::reconcile::Source,
        /// Only this order (its provider's id), whatever its age.
        #[arg(long)]
        order: Option<String>,
        /// Ask and report what would be recorded; record and send nothing.
        #[arg(long)]
        dry_run: bool,
        /// Only orders created at least this long ago: 30s, 10m, 2h, 1d.
        #[arg(long, default_value = "10m", value_parser = parse_age)]
        older_than: std::time::Duration,
        /// Only orders created within this long.
        #[arg(long, default_value = "7d", value_parser = parse_age)]
        within: std::time::Duration,
        /// The most orders asked about.
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
        #[command(flatten)]
        wait: Wait,
    },
}

/// `ledgerhook-admin retention ...`.
#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Run retention once, now (one run at a time: refused with
    /// RETENTION_RUNNING while a worker's is under way). Reads
    /// RETENTION_DAYS and RETENTION_BATCH_ROWS like the workers.
    Run {
        /// Count what would be scrubbed and dropped; change nothing (no
        /// partition made either).
        #[arg(long)]
        dry_run: bool,
    },
}

/// `ledgerhook-admin operator ...`: who may sign in to the console.
#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Add an operator and print a one-time password, once: only its
    /// argon2 hash is kept, and the console asks for a new password at the
    /// first sign-in.
    Add {
        /// Lower case letters, digits and . _ @ - (at most 64).
        name: String,
        /// viewer: looks, never acts; operator: looks and acts.
        #[arg(long, value_enum)]
        role: ConsoleRole,
    },
    /// List the operators, their roles and open sessions (never a password).
    List,
    /// Remove an operator; their sessions end at once.
    Remove { name: String },
}

/// `ledgerhook-admin api-key ...`: the product's backend's keys.
#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Make a key and print it, once: only its SHA-256 is kept.
    Add {
        /// Lower case letters, digits and . _ @ - (at most 64), e.g. the
        /// service that will hold it; never reused, even once revoked.
        name: String,
    },
    /// List the keys: names, who made them, when, and whether revoked
    /// (never a key).
    List,
    /// Revoke a key; requests with it are refused at once.
    Revoke { name: String },
}

/// A provider that can be paused on its own.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PausedProvider {
    Crossmint,
    Stripe,
}

impl PausedProvider {
    pub fn payment_provider(self) -> ledgerhook_domain::PaymentProvider {
        match self {
            Self::Crossmint => ledgerhook_domain::PaymentProvider::Crossmint,
            Self::Stripe => ledgerhook_domain::PaymentProvider::Stripe,
        }
    }
}

/// What an operator may do in the console.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ConsoleRole {
    Viewer,
    Operator,
}

/// How long a redrive or replay waits for outcomes.
#[derive(Debug, Args)]
pub struct Wait {
    /// Do not wait for the outcomes.
    #[arg(long)]
    pub no_wait: bool,
    /// Longest wait for the outcomes.
    #[arg(long, default_value_t = 30)]
    pub wait_secs: u64,
}

/// Why a change is made (recorded in the audit row and on the order).
#[derive(Debug, Args)]
pub struct Why {
    /// Why (kept in the audit row, and for a revoke on the order).
    #[arg(long)]
    pub reason: String,
}

/// A point in time given either way.
#[derive(Debug, Clone, Copy)]
pub struct Since(pub DateTime<Utc>);

fn parse_since(text: &str) -> Result<Since, String> {
    if let Ok(at) = text.parse::<DateTime<Utc>>() {
        return Ok(Since(at));
    }
    let age =
        parse_age(text).map_err(|_| format!("{text:?} is neither RFC 3339 nor an age like 24h"))?;
    let age = chrono::Duration::from_std(age).map_err(|_| format!("{text:?} is too long ago"))?;
    Ok(Since(Utc::now() - age))
}

/// An age: a whole number then s, m, h or d.
fn parse_age(text: &str) -> Result<std::time::Duration, String> {
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not an age like 10m"))?;
    let seconds = match unit {
        "s" => Some(number),
        "m" => number.checked_mul(60),
        "h" => number.checked_mul(3600),
        "d" => number.checked_mul(86_400),
        _ => return Err(format!("{text:?}: an age ends in s, m, h or d")),
    };
    seconds
        .filter(|s| *s <= 3650 * 86_400)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is longer than ten years"))
}

impl Command {
    /// The subcommand's name (recorded in the audit row by the commands
    /// that write one).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Database(command) => command.name(),
            Self::Migrate => "migrate",
            Self::Completions { .. } => "completions",
            Self::Man { .. } => "man",
        }
    }
}

impl DatabaseCommand {
    /// The name recorded in the audit row.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Parked { .. } => "parked",
            Self::Show { .. } => "show",
            Self::Redrive(_) => "redrive",
            Self::Replay { .. } => "replay",
            Self::ExpireCredits => "expire-credits",
            Self::Pause { .. } => "pause",
            Self::Resume { .. } => "resume",
            Self::Status => "status",
            Self::Duplicates { .. } => "duplicates",
            Self::Held { .. } => "held",
            Self::Release { .. } => "release",
            Self::Reject { .. } => "reject",
            Self::Revoke { .. } => "revoke",
            Self::Grant { .. } => "grant",
            Self::Audit { .. } => "audit",
            Self::Reconcile { .. } => "reconcile",
            Self::Notifications { .. } => "notifications",
            Self::Operator { .. } => "operator",
            Self::ApiKey { .. } => "api-key",
            Self::Retention { .. } => "retention",
            Self::EraseUser { .. } => "erase-user",
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory as _, Parser as _};

    use super::{Cli, Command, DatabaseCommand};

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
        super::command().debug_assert();
    }

    #[test]
    fn every_subcommand_is_named_as_clap_names_it() {
        let mut command = super::command();
        command.build();
        let clap_names: Vec<&str> = command
            .get_subcommands()
            .map(clap::Command::get_name)
            .filter(|name| *name != "help")
            .collect();
        for name in &clap_names {
            let args: &[&str] = match *name {
                "show" | "audit" => &["x"],
                "revoke" | "release" | "reject" => &["x", "--reason", "r"],
                "replay" => &["msg_1"],
                "grant" => &[
                    "--user",
                    "u",
                    "--credits",
                    "1",
                    "--idempotency-key",
                    "k",
                    "--reason",
                    "r",
                ],
                "pause" | "resume" => &["--reason", "r"],
                "operator" | "api-key" => &["list"],
                "retention" => &["run"],
                "erase-user" => &["u", "--reason", "r"],
                "completions" => &["bash"],
                _ => &[],
            };
            let cli = Cli::try_parse_from(["a", name].iter().chain(args))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(cli.command.name(), *name);
        }
        assert!(clap_names.contains(&"migrate") && clap_names.contains(&"man"));
    }

    #[test]
    fn the_migration_and_documentation_commands_parse() {
        let cli = Cli::try_parse_from(["a", "migrate"]).unwrap();
        assert!(matches!(cli.command, Command::Migrate));
        let cli = Cli::try_parse_from(["a", "completions", "zsh"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Completions {
                shell: clap_complete::Shell::Zsh
            }
        ));
        assert!(Cli::try_parse_from(["a", "completions", "tcsh"]).is_err());
        let cli = Cli::try_parse_from(["a", "man", "--dir", "/tmp/x"]).unwrap();
        assert!(
            matches!(cli.command, Command::Man { dir: Some(ref dir) } if dir.as_os_str() == "/tmp/x")
        );
    }

    #[test]
    fn a_change_needs_a_reason_and_a_grant_positive_credits() {
        assert!(Cli::try_parse_from(["a", "revoke", "o1"]).is_err());
        assert!(
            Cli::try_parse_from([
                "a",
                "grant",
                "--user",
                "u",
                "--credits",
                "0",
                "--reason",
                "r",
                "--idempotency-key",
                "k"
            ])
            .is_err()
        );
        let cli = Cli::try_parse_from(["a", "--json", "revoke", "o1", "--reason", "dup"]).unwrap();
        assert!(cli.json);
        assert!(matches!(
            cli.command,
            Command::Database(DatabaseCommand::Revoke { ref order, .. }) if order == "o1"
        ));
    }

    #[test]
    fn since_takes_an_age_or_a_time() {
        let cli = Cli::try_parse_from(["a", "duplicates", "--since", "2h"]).unwrap();
        let Command::Database(DatabaseCommand::Duplicates { since }) = cli.command else {
            panic!("duplicates")
        };
        let age = chrono::Utc::now() - since.0;
        assert!(age >= chrono::Duration::hours(2) && age < chrono::Duration::hours(3));
        assert!(
            Cli::try_parse_from(["a", "duplicates", "--since", "2026-11-24T00:00:00Z"]).is_ok()
        );
        assert!(Cli::try_parse_from(["a", "duplicates", "--since", "soon"]).is_err());
    }

    #[test]
    fn reconcile_takes_ages() {
        let cli = Cli::try_parse_from(["a", "reconcile", "--older-than", "90s"]).unwrap();
        let Command::Database(DatabaseCommand::Reconcile {
            older_than, within, ..
        }) = cli.command
        else {
            panic!("reconcile")
        };
        assert_eq!(older_than.as_secs(), 90);
        assert_eq!(within.as_secs(), 7 * 86_400);
        assert!(Cli::try_parse_from(["a", "reconcile", "--older-than", "-1m"]).is_err());
        assert!(Cli::try_parse_from(["a", "reconcile", "--older-than", "10y"]).is_err());
    }

    #[test]
    fn replay_takes_ids_or_a_range_not_both() {
        assert!(Cli::try_parse_from(["a", "replay", "msg_1", "msg_2"]).is_ok());
        assert!(
            Cli::try_parse_from([
                "a",
                "replay",
                "--from",
                "2026-11-24T00:00:00Z",
                "--to",
                "2026-11-24T01:00:00Z"
            ])
            .is_ok()
        );
        assert!(Cli::try_parse_from(["a", "replay"]).is_err());
        assert!(Cli::try_parse_from(["a", "replay", "--from", "2026-11-24T00:00:00Z"]).is_err());
    }
}
