#!/usr/bin/env bash
# Benchmark on this machine: release binaries, a fresh database and queue
# prefix, loopback only, bounded in count and time.
#   deploy/bench.sh ingest      accepted/s and ack latency, workers stopped
#   deploy/bench.sh e2e         sustained end to end at a paced rate
#   deploy/bench.sh drain       queue COUNT deliveries, then time the workers alone
#   deploy/bench.sh closed      the closed loop: workers running, COUNT deliveries sent
#                               unpaced, timed until the ledger has caught up
#   deploy/bench.sh scaling     the same drain with 1, 2 and 3 workers, ROUNDS (2) times each
#   deploy/bench.sh hostile     issue 8: ingester CPU per hostile vs honest request,
#                               honest ack p99 alone and beside SENDERS hostile senders
#   deploy/bench.sh ab REV      REV (built in a git worktree under target/bench-ab) against
#                               the working tree, interleaved: ROUNDS (3) rounds of
#                               ingest, drain and closed loop, A then B each round;
#                               medians and B/A, and each process's peak RSS
# BIN_DIR runs the ingester and worker from another build (the tools,
# loadgen included, always come from this tree's target/release).
# Tunables (environment): COUNT, CONCURRENCY, RATE, WORKERS, WORKER_CONCURRENCY,
# PROVIDER (crossmint, the default, or stripe: ingest, e2e and drain send
# Stripe's checkout.session.completed to /webhooks/stripe instead);
# for hostile: ENTRIES, HOSTILE_COUNT, HONEST_COUNT, COST_SECS, PHASE_SECS, SENDERS.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-ingest}
# Only what a benchmark runs: release builds link with fat LTO (see
# Cargo.toml), minutes per binary on two cores.
build_release() {
  # Every binary named: --bin filters all the packages given, so naming
  # only the tools would leave the services unbuilt (or stale).
  cargo build --release -q -p ledgerhook-ingester -p ledgerhook-worker -p ledgerhook-tests \
    --bin ledgerhook-ingester --bin ledgerhook-worker --bin ledgerhook-loadgen --bin ledgerhook-hostile
}
if [ "$mode" = scaling ]; then
  # The same backlog drained by 1, 2 and 3 workers, ROUNDS times each in
  # turn (each run its own database and queue prefix), so that what adding
  # a worker buys on this machine is measured, not assumed.
  for round in $(seq "${ROUNDS:-2}"); do
    for workers in 1 2 3; do
      result=$(WORKERS=$workers "$0" drain | grep '^drained')
      echo "round $round, $workers worker(s): $result"
    done
  done
  exit 0
fi
if [ "$mode" = ab ]; then
  # Only same-run ratios count on these noisy machines: both builds take
  # turns on the same box, the same services, the same load generator.
  rev=${2:?usage: $0 ab REV}
  deploy/prerequisites.sh
  deploy/services.sh >/dev/null
  export LEDGERHOOK_COMMIT="${LEDGERHOOK_COMMIT:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}"
  build_release
  base=$(git rev-parse --short=12 "$rev^{commit}")
  tree=target/bench-ab/$base
  [ -d "$tree" ] || git worktree add --detach "$tree" "$base" >/dev/null
  # Its own target folder, shared by every REV built this way.
  (cd "$tree" && LEDGERHOOK_COMMIT=$base CARGO_TARGET_DIR="$PWD/../target" \
     cargo build --release -q -p ledgerhook-ingester -p ledgerhook-worker)
  a_bins=$PWD/target/bench-ab/target/release
  b_bins=$PWD/target/release
  results=$(mktemp)
  echo "# A = $base, B = working tree ($(git rev-parse --short=12 HEAD)$(git diff --quiet HEAD -- . ':!target' || echo ', with changes')); ROUNDS=${ROUNDS:-3}; COUNT=${COUNT:-20000}"
  for round in $(seq "${ROUNDS:-3}"); do
    for side in A B; do
      bins=$a_bins; [ "$side" = B ] && bins=$b_bins
      ingest=$(BIN_DIR=$bins COUNT=${COUNT:-20000} "$0" ingest)
      rate=$(echo "$ingest" | sed -n 's/.*: \([0-9]*\) accepted\/s/\1/p')
      p99=$(echo "$ingest" | sed -n 's/.*p99 \([0-9.]*\) ms.*/\1/p')
      drain=$(BIN_DIR=$bins COUNT=${COUNT:-20000} "$0" drain)
      drained=$(echo "$drain" | sed -n 's/.*: \([0-9.]*\) processed\/s.*/\1/p')
      closed=$(BIN_DIR=$bins COUNT=${COUNT:-20000} "$0" closed)
      looped=$(echo "$closed" | sed -n 's/.*(\([0-9]*\) processed\/s overall).*/\1/p')
      ingester_rss=$(echo "$ingest"$'\n'"$closed" | sed -n 's/^peak rss ingester \([0-9]*\) KiB.*/\1/p' | sort -n | tail -1)
      worker_rss=$(echo "$drain"$'\n'"$closed" | sed -n 's/^peak rss worker[0-9]* \([0-9]*\) KiB.*/\1/p' | sort -n | tail -1)
      echo "round $round $side: ingest ${rate}/s p99 ${p99} ms, drain ${drained}/s, closed loop ${looped}/s; peak RSS ingester ${ingester_rss} KiB, worker ${worker_rss} KiB"
      echo "$side $rate $p99 $drained $looped $ingester_rss $worker_rss" >> "$results"
    done
  done
  median() { sort -n | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
  for column in 2:ingest/s 3:p99_ms 4:drain/s 5:closed_loop/s 6:ingester_rss_KiB 7:worker_rss_KiB; do
    index=${column%%:*}; name=${column#*:}
    a=$(awk -v c="$index" '$1=="A" {print $c}' "$results" | median)
    b=$(awk -v c="$index" '$1=="B" {print $c}' "$results" | median)
    echo "median $name: A $a, B $b, B/A $(echo "scale=3; $b / $a" | bc)"
  done
  rm -f "$results"
  exit 0
fi
deploy/prerequisites.sh
deploy/services.sh >/dev/null
# The commit each binary names in ledgerhook_build_info, read at compile
# time by its main alone (so a new commit rebuilds only the binaries).
export LEDGERHOOK_COMMIT="${LEDGERHOOK_COMMIT:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}"
[ -n "${BIN_DIR:-}" ] || build_release
bins=${BIN_DIR:-target/release}

tag=$(date +%s)$$
# Plain TCP on loopback: TLS there protects nothing, and the build of
# 2026-11-23 that `ab` compares against could not speak it (PostgreSQL
# here has ssl=on, so the default sslmode=prefer would encrypt). BENCH_SSLMODE
# measures what TLS costs (e.g. require).
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/ledgerhook_bench_${tag}?sslmode=${BENCH_SSLMODE:-disable}"
export QUEUE_PREFIX="bench.${tag}"
export CROSSMINT_WEBHOOK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw   # Svix's public test secret
export STRIPE_WEBHOOK_SECRET=whsec_test_ledgerhook_fake_stripe_secret   # visibly fake
provider=${PROVIDER:-crossmint}
export LISTEN_ADDR=127.0.0.1:0 METRICS_ADDR=127.0.0.1:0 RUST_LOG=warn,ledgerhook_ingester=info,ledgerhook_worker=info
log=$(mktemp -d)
pids=()
cleanup() {
  status=$?
  if [ "$status" != 0 ]; then
    echo "# failed; state before cleanup (logs in $log):"
    rabbitmqctl -q list_queues name messages_ready messages_unacknowledged 2>/dev/null | grep "$QUEUE_PREFIX" || true
    psql -h 127.0.0.1 -U postgres -d "ledgerhook_bench_${tag}" -c "select (select count(*) from webhook_deliveries where processed_at is null) as unprocessed, (select count(*) from delivery_outbox) as outbox" \
      -c "select pid, state, wait_event_type, wait_event, now() - xact_start as xact_age, left(query, 60) from pg_stat_activity where datname = 'ledgerhook_bench_${tag}' and state <> 'idle'" || true
  fi
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$status" != 0 ] && [ -n "${KEEP_ON_FAILURE:-}" ]; then echo "# kept database ledgerhook_bench_${tag}"; return; fi
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "drop database if exists ledgerhook_bench_${tag} with (force)" >/dev/null 2>&1 || true
  for q in $(rabbitmqctl list_queues --quiet --no-table-headers name 2>/dev/null | grep "^${QUEUE_PREFIX}\\."); do
    rabbitmqctl delete_queue "$q" >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT

"$bins/ledgerhook-ingester" 2>"$log/ingester.log" & pids+=($!)
for _ in $(seq 100); do grep -q "ingester listening" "$log/ingester.log" && break; sleep 0.1; done
addr=$(grep -o 'http=[0-9.:]*' "$log/ingester.log" | head -1 | cut -d= -f2)
[ -n "$addr" ] || { cat "$log/ingester.log"; exit 1; }
url="http://${addr}/webhooks/${provider}"

# Peak resident memory (VmHWM) of each process this run started, read
# before they are stopped.
report_rss() {
  local names=(ingester) i=1
  for _ in $(seq "${WORKERS:-1}"); do names+=("worker$i"); i=$((i + 1)); done
  for index in "${!pids[@]}"; do
    [ -n "${names[$index]:-}" ] || continue
    kib=$(awk '/^VmHWM/ {print $2}' "/proc/${pids[$index]}/status" 2>/dev/null || true)
    [ -n "$kib" ] && echo "peak rss ${names[$index]} ${kib} KiB"
  done
  return 0
}

start_workers() {
  for i in $(seq "${WORKERS:-1}"); do
    WORKER_CONCURRENCY=${WORKER_CONCURRENCY:-4} "$bins/ledgerhook-worker" 2>"$log/worker$i.log" & pids+=($!)
  done
}

case "$mode" in
  ingest)
    echo "# ingest only (no worker): COUNT=${COUNT:-30000} CONCURRENCY=${CONCURRENCY:-64}"
    target/release/ledgerhook-loadgen --provider "$provider" --url "$url" --database-url "$DATABASE_URL" \
      --count "${COUNT:-30000}" --concurrency "${CONCURRENCY:-64}" --no-wait
    report_rss
    ;;
  e2e)
    start_workers
    sleep 1
    echo "# end to end: COUNT=${COUNT:-50000} RATE=${RATE:-2500}/s CONCURRENCY=${CONCURRENCY:-64} WORKERS=${WORKERS:-1} WORKER_CONCURRENCY=${WORKER_CONCURRENCY:-4}"
    target/release/ledgerhook-loadgen --provider "$provider" --url "$url" --database-url "$DATABASE_URL" \
      --count "${COUNT:-50000}" --concurrency "${CONCURRENCY:-64}" --rate "${RATE:-2500}" --wait-timeout-secs 120
    report_rss
    ;;
  drain)
    echo "# worker drain: COUNT=${COUNT:-30000} queued first, then WORKERS=${WORKERS:-1} WORKER_CONCURRENCY=${WORKER_CONCURRENCY:-4} start"
    target/release/ledgerhook-loadgen --provider "$provider" --url "$url" --database-url "$DATABASE_URL" \
      --count "${COUNT:-30000}" --concurrency "${CONCURRENCY:-64}" --no-wait >/dev/null
    start=$(date +%s.%N)
    start_workers
    # The end is when the last delivery was processed, read from the
    # database (the check polls slowly, so as not to load what it measures).
    checked=$(target/release/ledgerhook-loadgen --database-url "$DATABASE_URL" --check-only --wait-timeout-secs 300)
    echo "$checked"
    end=$(echo "$checked" | sed -n 's/.*the last at \([0-9.]*\) (Unix time).*/\1/p')
    echo "drained ${COUNT:-30000} in $(echo "$end - $start" | bc) s: $(echo "${COUNT:-30000} / ($end - $start)" | bc) processed/s (includes worker start-up)"
    report_rss
    ;;
  closed)
    # The whole pipeline at full speed: senders unpaced, the clock stopped
    # when the last delivery's effects are committed (the load generator
    # polls every 50 ms at most).
    start_workers
    for i in $(seq "${WORKERS:-1}"); do
      for _ in $(seq 100); do grep -q consuming "$log/worker$i.log" && break; sleep 0.1; done
    done
    echo "# closed loop: COUNT=${COUNT:-30000} CONCURRENCY=${CONCURRENCY:-64} unpaced, WORKERS=${WORKERS:-1} WORKER_CONCURRENCY=${WORKER_CONCURRENCY:-4}"
    target/release/ledgerhook-loadgen --provider "$provider" --url "$url" --database-url "$DATABASE_URL" \
      --count "${COUNT:-30000}" --concurrency "${CONCURRENCY:-64}" --wait-timeout-secs 300
    report_rss
    ;;
  hostile)
    # No worker: only the ingester's answers are measured. Its pid is the
    # first started; its CPU time is read from /proc. The load is printed
    # before and after because other builds on this 2-core machine skew
    # the figures.
    url="http://${addr}/webhooks/crossmint"   # Svix's headers: the Crossmint route, whatever PROVIDER says
    echo "# hostile headers: ENTRIES=${ENTRIES:-8000} HOSTILE_COUNT=${HOSTILE_COUNT:-20} HONEST_COUNT=${HONEST_COUNT:-200} COST_SECS=${COST_SECS:-45} RATE=${RATE:-200}/s PHASE_SECS=${PHASE_SECS:-30} CONCURRENCY=${CONCURRENCY:-16} SENDERS=${SENDERS:-4}"
    echo "# load before: $(uptime | sed 's/.*load average/load average/')"
    target/release/ledgerhook-hostile --url "$url" --ingester-pid "${pids[0]}" --clk-tck "$(getconf CLK_TCK)" \
      --entries "${ENTRIES:-8000}" --hostile-count "${HOSTILE_COUNT:-20}" --honest-count "${HONEST_COUNT:-200}" \
      --cost-secs "${COST_SECS:-45}" --rate "${RATE:-200}" --phase-secs "${PHASE_SECS:-30}" \
      --concurrency "${CONCURRENCY:-16}" --senders "${SENDERS:-4}"
    echo "# load after: $(uptime | sed 's/.*load average/load average/')"
    ;;
  *) echo "usage: $0 ingest|e2e|drain|closed|scaling|hostile|ab REV" >&2; exit 2 ;;
esac
