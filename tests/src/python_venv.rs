//! Python tools the tests run as real peers (schemathesis against the API,
//! aiosmtpd as the mail server), each in a virtualenv of its own under
//! `target/`, made on first use with `python3 -m venv` and pip.

use std::path::PathBuf;
use std::process::Command;

/// The virtualenv `target/<name>` with `requirement` (a pinned `pkg==x.y`)
/// installed, made if missing; its directory. A marker file named after the
/// requirement says the install finished, so an interrupted one is redone.
/// Blocking: call it from `spawn_blocking` or a `OnceLock`.
pub fn venv_with(name: &str, requirement: &str) -> PathBuf {
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
