//! `ledgerhook-admin`: the operator's command, one subcommand per runbook
//! (`ledgerhook-admin --help`, and `--help` on each subcommand). See
//! `ledgerhook_worker::admin`.
//!
//! The command line is parsed before anything else: `--help` and a usage
//! error touch neither the database nor the broker.

use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _};
use ledgerhook_worker::admin::{self, Peers, cli::Cli};

/// Exit status of a refusal (a code is printed); 1 is a failure, 2 bad usage.
const REFUSED: u8 = 3;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // The version is added here, not in `admin::cli`, which stays as it is.
    let matches = Cli::command()
        .version(env!("CARGO_PKG_VERSION"))
        .get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if admin::changes_something(&cli.command) && cli.operator.is_none() {
        Cli::command()
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                format!(
                    "{} changes something: say who you are with --operator NAME (or LEDGERHOOK_OPERATOR)",
                    cli.command.name()
                ),
            )
            .exit();
    }
    let json = cli.json;
    let result = async {
        let peers = Peers::from_env(admin::needs_broker(&cli.command))?;
        admin::run(cli, &peers).await
    }
    .await;
    match result {
        Ok(printout) => {
            if json {
                println!("{}", printout.json);
            } else {
                print!("{}", printout.text);
            }
            if printout.refused.is_some() {
                ExitCode::from(REFUSED)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            if json {
                println!("{}", serde_json::json!({"error": format!("{e:#}")}));
            }
            eprintln!("ledgerhook-admin: {e:#}");
            ExitCode::FAILURE
        }
    }
}
