//! Python tools the tests run as real peers (schemathesis against the API,
//! aiosmtpd as the mail server), each in a virtualenv of its own under
//! `target/`, made on first use with `python3 -m venv` and pip.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, PoisonError};

/// The virtualenv `target/<name>` with `requirement` (a pinned `pkg==x.y`)
/// installed, made if missing; its directory. A marker file named after the
/// requirement says the install finished, so an interrupted one is redone.
/// Blocking: call it from `spawn_blocking` or a `OnceLock`.
pub fn venv_with(name: &str, requirement: &str) -> PathBuf {
    // One maker at a time in this process: tests that need the same
    // virtualenv start together, and two `venv --clear` runs on one folder
    // pull it from under each other's pip.
    static MAKING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = MAKING.lock().unwrap_or_else(PoisonError::into_inner);
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target")
        .join(name);
    let marker = venv.join(requirement);
    if !marker.exists() {
        let made = Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(&venv)
            .status()
            .expect("python3 (with venv) is needed for this test");
        assert!(made.success(), "python3 -m venv {} failed", venv.display());
        let installed = Command::new(venv.join("bin/pip"))
            .args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                requirement,
            ])
            .status()
            .expect("running pip");
        assert!(installed.success(), "pip install {requirement} failed");
        std::fs::write(&marker, "").expect("writing the venv's marker");
    }
    venv
}
