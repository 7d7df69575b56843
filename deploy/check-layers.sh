#!/usr/bin/env bash
# Keeps the layering ARCHITECTURE.md describes, as a check rather than a
# hope (the third rule, SQL only in ledgerhook-store, is clippy.toml's):
# - ledgerhook-domain depends on no I/O crate, directly or through another;
# - the worker's consume -> process -> settle path never names a provider:
#   a message's provider is a type, read once, and ledgerhook-providers
#   picks the parser.
set -euo pipefail
cd "$(dirname "$0")/.."

io_crates='^(sqlx|sqlx-[a-z-]+|tokio|tokio-[a-z-]+|lapin|reqwest|axum|axum-core|hyper|hyper-util|mio|socket2) '
found=$(cargo tree -q -p ledgerhook-domain -e normal --prefix none | sort -u | grep -E "$io_crates" || true)
if [ -n "$found" ]; then
  echo "ledgerhook-domain depends on I/O crates (see ARCHITECTURE.md):" >&2
  echo "$found" >&2
  exit 1
fi

named=$(grep -niE 'crossmint|stripe|svix' worker/src/consumer.rs worker/src/processor.rs worker/src/settler.rs || true)
if [ -n "$named" ]; then
  echo "the worker's consume/process/settle path names a provider (see ARCHITECTURE.md):" >&2
  echo "$named" >&2
  exit 1
fi
echo "layers: ledgerhook-domain has no I/O dependency; the worker's message path names no provider"
