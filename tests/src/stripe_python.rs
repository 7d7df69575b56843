//! Stripe's own Python library (pinned, in a virtual environment made once
//! under `target/`), for signing and checking webhooks as Stripe's servers
//! and its integrators do: what we accept is what Stripe sends, not only
//! what our own signer makes.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::python_venv;

/// Stripe's official Python library, pinned.
pub const STRIPE_PYTHON: &str = "stripe==16.1.0";

/// Signs `{t}.{payload}` as Stripe's servers do, with Stripe's library.
pub const PY_SIGN: &str = r#"
import sys, stripe
secret, t, path = sys.argv[1:4]
payload = open(path, "rb").read().decode("utf-8")
print(stripe.WebhookSignature._compute_signature(f"{t}.{payload}", secret))
"#;

/// The virtual environment's interpreter (made on first use).
pub fn stripe_python() -> PathBuf {
    python_venv::venv_with("stripe-venv", STRIPE_PYTHON).join("bin/python")
}

/// Runs `script` with `args`: whether it succeeded, and what it printed.
pub fn python(python: &Path, script: &str, args: &[&str]) -> (bool, String) {
    let output = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("running python");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text.trim().to_owned())
}

/// The `Stripe-Signature` header Stripe's library makes for `body` at
/// `timestamp` with `secret` (`t=...,v1=...`).
pub fn signature_by_stripe(
    python_path: &Path,
    secret: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let file = tempfile_with(body);
    let (ok, v1) = python(
        python_path,
        PY_SIGN,
        &[
            secret,
            &timestamp.to_string(),
            file.to_str().expect("a UTF-8 path"),
        ],
    );
    let _ = std::fs::remove_file(&file);
    assert!(ok, "Stripe's library could not sign: {v1}");
    format!("t={timestamp},v1={v1}")
}

fn tempfile_with(body: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "stripe-body-{}.json",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&path, body).expect("writing a temporary body");
    path
}
