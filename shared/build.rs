//! `sqlx::migrate!` embeds `migrations/` at compile time; without this, a
//! new migration file would not rebuild the crate, and a binary would run
//! with the old set (sqlx's documented build script).
//!
//! It also records the commit being built (`LEDGERHOOK_COMMIT`, for
//! `ledgerhook_build_info`): `git rev-parse`, or `unknown` where there is
//! no repository (a container build's context leaves `.git` out).
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=../migrations");
    println!("cargo:rerun-if-changed=../.git/HEAD");
    println!("cargo:rerun-if-changed=../.git/refs/heads");
    println!("cargo:rerun-if-env-changed=LEDGERHOOK_COMMIT");
    let commit = std::env::var("LEDGERHOOK_COMMIT").ok().or_else(|| {
        Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()
            .filter(|output| output.status.success())
            .and_then(|output| String::from_utf8(output.stdout).ok())
            .map(|text| text.trim().to_owned())
            .filter(|text| !text.is_empty())
    });
    println!(
        "cargo:rustc-env=LEDGERHOOK_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
}
