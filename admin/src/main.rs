//! `ledgerhook-admin`: the operator's command, one subcommand per runbook
//! (`ledgerhook-admin --help`, and `--help` on each subcommand). See
//! the `ledgerhook_admin` library.
//!
//! The command line is parsed before anything else: `--help`, a usage
//! error, `completions` and `man` touch neither the database nor the broker.

use std::process::ExitCode;

use clap::FromArgMatches as _;
use ledgerhook_admin::cli::{self, Cli};
use ledgerhook_admin::terminal;

/// Exit status of a refusal (a code is printed); 1 is a failure, 2 bad usage.
const REFUSED: u8 = 3;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // The same command the completions and the manual pages come from.
    let matches = cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if ledgerhook_admin::changes_something(&cli.command) && cli.operator.is_none() {
        cli::command()
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
    let result = ledgerhook_admin::run(cli).await;
    match result {
        Ok(printout) => {
            if json {
                println!("{}", printout.json);
            } else {
                print!("{}", terminal::safe(&printout.text));
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
            eprintln!("ledgerhook-admin: {}", terminal::safe(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}
