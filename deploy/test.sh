#!/usr/bin/env bash
# Runs every check and test: alert rules (promtool), formatting, clippy,
# unit tests and the
# integration tests against real PostgreSQL and RabbitMQ (started, or
# installed with apt-get, where missing). Each integration test makes its own
# database and queue prefix and removes them afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/services.sh
# promtool (from Debian's prometheus package) tests the alert rules.
if ! command -v promtool >/dev/null; then
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts_test.yml
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -q -- -D warnings
# The integration tests run the real binaries, found beside the test executables.
cargo build --workspace --bins
cargo test --workspace --no-fail-fast "$@"
