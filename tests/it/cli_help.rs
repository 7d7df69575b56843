//! Every binary parses its command line before doing anything: `--help` and
//! `--version` exit 0, print the binary's name, and touch neither PostgreSQL
//! nor RabbitMQ (issue 12). Needs the binaries built
//! (`cargo build --workspace --bins`); no services are used.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use ledgerhook_tests::offline;

const BINARIES: &[&str] = &[
    "ledgerhook-ingester",
    "ledgerhook-worker",
    "ledgerhook-api",
    "ledgerhook-notifier",
    "ledgerhook-admin",
    "ledgerhook-console",
    "ledgerhook-token",
    "ledgerhook-sign",
    "ledgerhook-loadgen",
    "ledgerhook-hostile",
    "ledgerhook-fake-crossmint",
    "ledgerhook-fake-stripe",
];

/// Where the binaries are (the harness's answer).
fn bin_dir() -> PathBuf {
    ledgerhook_tests::harness::processes::bin_dir().expect("the binaries' folder")
}

/// Runs `name arg` with the database and the broker pointed at a closed
/// port and the secrets a service would want set; kills it after 5 s.
fn run(name: &str, arg: &str) -> Output {
    let path = bin_dir().join(name);
    let mut command = Command::new(&path);
    offline::without_services(&mut command).arg(arg).env(
        "AUTH_JWT_SECRET",
        "a-secret-of-at-least-thirty-two-bytes-long",
    );
    let what = format!("{} {arg} (cargo build --workspace --bins)", path.display());
    offline::output_within(command, Duration::from_secs(5), &what)
}

fn check(name: &str, arg: &str) -> String {
    let output = run(name, arg);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{name} {arg} exited {:?}: {stdout}{stderr}",
        output.status
    );
    assert!(
        stdout.contains(name),
        "{name} {arg} does not print its name: {stdout}{stderr}"
    );
    // Nothing logged, nothing connected: tracing and connection errors go to
    // stderr, which a --help or --version leaves empty.
    assert!(
        stderr.trim().is_empty(),
        "{name} {arg} wrote to stderr: {stderr}"
    );
    stdout
}

#[test]
fn every_binary_answers_help_without_side_effects() {
    for name in BINARIES {
        let help = check(name, "--help");
        assert!(
            help.contains("Usage:"),
            "{name} --help prints no usage: {help}"
        );
        assert!(
            !help.contains("eyJ"),
            "{name} --help printed a token: {help}"
        );
    }
}

#[test]
fn every_binary_answers_version_without_side_effects() {
    for name in BINARIES {
        let version = check(name, "--version");
        assert!(
            version.contains(env!("CARGO_PKG_VERSION")),
            "{name} --version prints no version: {version}"
        );
    }
}

#[test]
fn services_say_their_configuration_is_the_environment() {
    for name in [
        "ledgerhook-ingester",
        "ledgerhook-worker",
        "ledgerhook-api",
        "ledgerhook-notifier",
        "ledgerhook-console",
    ] {
        let help = check(name, "--help");
        assert!(
            help.contains("environment") && help.contains("DATABASE_URL"),
            "{name} --help does not point at its environment variables: {help}"
        );
    }
}

#[test]
fn token_help_mints_nothing() {
    let help = check("ledgerhook-token", "--help");
    assert!(!help.contains("eyJ"), "a token in {help}");
    assert!(help.contains("USER_ID"), "{help}");
}
