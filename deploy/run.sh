#!/usr/bin/env bash
# Runs ledgerhook on this machine: makes sure PostgreSQL and RabbitMQ are up
# (installing them with apt-get where missing), builds the release binaries,
# then runs the ingester and WORKERS workers (default 1) in the foreground.
# Ctrl-C stops them all. Configuration comes from the environment (README).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${CROSSMINT_WEBHOOK_SECRET:-}" ]; then
  echo "CROSSMINT_WEBHOOK_SECRET is not set: export your whsec_ secret (space-separate several during rotation)." >&2
  echo "For a local try, Svix's public test secret works: export CROSSMINT_WEBHOOK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" >&2
  exit 2
fi
deploy/services.sh
cargo build --release -q -p ledgerhook-ingester -p ledgerhook-worker -p ledgerhook-tests

pids=()
stop() { kill "${pids[@]}" 2>/dev/null || true; wait; }
trap stop INT TERM EXIT
target/release/ledgerhook-ingester & pids+=($!)
# Each worker needs its own metrics port: 9181, 9182, ...
base=${WORKER_METRICS_PORT_BASE:-9181}
for i in $(seq 0 $(( ${WORKERS:-1} - 1 ))); do
  METRICS_ADDR="127.0.0.1:$((base + i))" target/release/ledgerhook-worker & pids+=($!)
done
wait -n
