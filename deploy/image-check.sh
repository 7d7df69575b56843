#!/usr/bin/env bash
# Builds deploy/Dockerfile for real, with podman, and runs the image: its
# ingester and worker as containers against this machine's PostgreSQL and
# RabbitMQ, on a fresh database and queue prefix, a signed test webhook
# through them, and the credits checked in the database. Also checks that
# the processes run as the image's user (uid 10001) and name the commit
# they were built from. Removes its containers, database and queues on the
# way out, however it ends. Idempotent: a second run reuses the base images
# and the build's cached layers.
#
# The build context is `git archive HEAD`: the committed tree, never
# half-edited files. The base images are made here (deploy/image-bases.sh):
# these machines reach no image registry.
#
# Installs what it needs with apt-get (podman, runc, netavark, debootstrap;
# PostgreSQL and RabbitMQ through deploy/services.sh). Runs as root (podman
# without root needs more setup than a check should make). Work files go to
# IMAGE_CHECK_DIR (default target/image-check); podman's own storage is its
# default, /var/lib/containers.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || exec sudo --preserve-env=PATH,IMAGE_CHECK_DIR "$0" "$@"

started=$SECONDS
work=$(realpath -m "${IMAGE_CHECK_DIR:-target/image-check}")
mkdir -p "$work"
# One run at a time: a second would replace the first's build context.
exec 9>"$work/lock"
flock -n 9 || { echo "another image-check is running (lock $work/lock)" >&2; exit 1; }

missing=()
for tool in podman runc netavark debootstrap psql curl; do
  case $tool in
    netavark) [ -x /usr/lib/podman/netavark ] || missing+=(netavark aardvark-dns iptables) ;;
    psql) command -v psql >/dev/null || missing+=(postgresql-client) ;;
    *) command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || missing+=("$tool") ;;
  esac
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} with apt-get" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
PATH=$PATH:/usr/sbin
deploy/services.sh >/dev/null

# podman's settings for these machines, for this script alone: crun refuses
# their cgroup v1 setup, there is no systemd for cgroups or the event log,
# and the file limits a container inherits would otherwise be unbounded.
export CONTAINERS_CONF=$work/containers.conf
cat >"$CONTAINERS_CONF" <<'EOF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF

deploy/image-bases.sh "$work"
bases_done=$SECONDS

# The committed tree, exactly.
commit=$(git rev-parse --short=12 HEAD)
git diff --quiet HEAD -- || echo "note: uncommitted changes are not in the image (it builds $commit)" >&2
rm -rf "$work/context"
mkdir -p "$work/context"
git archive HEAD | tar -x -C "$work/context"
image=localhost/ledgerhook:image-check
echo "building $image from $commit" >&2
podman build --pull=never -f "$work/context/deploy/Dockerfile" \
  --build-arg LEDGERHOOK_COMMIT="$commit" -t "$image" "$work/context" >"$work/build.log" 2>&1 \
  || { tail -40 "$work/build.log" >&2; exit 1; }
built=$SECONDS

# A world of its own: database and queue prefix named for this run.
run=$(date +%s)_$$
db=ledgerhook_imagecheck_$run
prefix=lhimagecheck.$run
database_url=postgres://postgres@127.0.0.1:5432/$db
containers=()
cleanup() {
  local status=$?
  # Finish cleaning even if interrupted again (timeout, a second Ctrl-C).
  trap '' INT TERM
  for c in "${containers[@]}"; do
    [ $status = 0 ] || { echo "--- $c ---" >&2; podman logs --tail 20 "$c" >&2 || true; }
    podman rm -f -t 5 "$c" >/dev/null 2>&1 || true
  done
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "drop database if exists $db with (force)" || true
  # (rabbitmqctl reads standard input: without </dev/null the first one
  # in the loop would swallow the rest of the list.)
  local queue exchange
  for queue in $(rabbitmqctl -q list_queues --no-table-headers name </dev/null | grep -F "$prefix." || true); do
    rabbitmqctl -q delete_queue "$queue" </dev/null >/dev/null || echo "queue $queue left behind" >&2
  done
  # rabbitmqctl has no delete_exchange; the broker's own function does it.
  for exchange in $(rabbitmqctl -q list_exchanges --no-table-headers name </dev/null | grep -F "$prefix." || true); do
    rabbitmqctl -q eval "rabbit_exchange:delete(rabbit_misc:r(<<\"/\">>, exchange, <<\"$exchange\">>), false, <<\"image-check\">>)." </dev/null >/dev/null \
      || echo "exchange $exchange left behind" >&2
  done
  if rabbitmqctl -q list_queues --no-table-headers name </dev/null | grep -qF "$prefix."; then
    echo "queues under $prefix were left behind" >&2
    [ $status != 0 ] || status=1
  fi
  exit $status
}
trap cleanup EXIT
# Interrupted, it still cleans up (through the EXIT trap).
trap 'exit 130' INT TERM

# Svix's public test secret unless one is given; passed by name, never
# printed (the signing tool prints only signatures).
export CROSSMINT_WEBHOOK_SECRET=${CROSSMINT_WEBHOOK_SECRET:-whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}
in_image() {
  podman run --network=host -e DATABASE_URL="$database_url" -e AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2f \
    -e QUEUE_PREFIX="$prefix" -e CROSSMINT_WEBHOOK_SECRET "$@"
}
start() { # NAME COMMAND: a container of the image on the host's network,
  # kept when it stops (its log tells why; cleanup removes it)
  containers+=("lh-$1-$run")
  in_image -d --name "lh-$1-$run" -e RUN_MIGRATIONS=false -e LISTEN_ADDR=127.0.0.1:0 \
    -e METRICS_ADDR=127.0.0.1:0 "$image" "$2" >/dev/null
}
# The address a container's start line reports for FIELD (http, metrics).
bound() {
  local line
  for _ in $(seq 100); do
    line=$(podman logs "$1" 2>&1 | grep -o "\"$2\":\"127.0.0.1:[0-9]*\"" | head -1 || true)
    [ -z "$line" ] || { echo "${line//\"/}" | cut -d: -f2-; return; }
    [ "$(podman inspect --format '{{.State.Running}}' "$1")" = true ] \
      || { echo "$1 stopped before reporting its $2 address" >&2; return 1; }
    sleep 0.3
  done
  echo "$1 reported no $2 address" >&2
  return 1
}
wait_ready() {
  for _ in $(seq 100); do curl -fsS -o /dev/null "$1" && return; sleep 0.3; done
  echo "$1 never answered" >&2
  return 1
}

in_image --rm "$image" ledgerhook-admin migrate >/dev/null
start ingester ledgerhook-ingester
start worker ledgerhook-worker
http=$(bound "lh-ingester-$run" http)
worker_metrics=$(bound "lh-worker-$run" metrics)
wait_ready "http://$http/readyz"
wait_ready "http://$worker_metrics/readyz"
echo "ingester ready on $http, worker on $worker_metrics (database $db, queues $prefix.*)" >&2

# Signed by the image's own ledgerhook-sign, as the README does it. The
# curl command it prints names the file, so the file has the same path in
# the container as here.
payloads=$work/context/tests/payloads
request=$(in_image --rm -v "$payloads:$payloads:ro" "$image" \
  ledgerhook-sign --url "http://$http/webhooks/crossmint" "$payloads/orders.payment.succeeded.json")
answer=$(eval "$request")
case $answer in *'"accepted"'*) ;; *) echo "the ingester answered: $answer" >&2; exit 1 ;; esac
echo "signed webhook accepted: $answer" >&2

# The payload's user buys the pro package: 3,300 credits (README).
balance=
for _ in $(seq 100); do
  balance=$(psql -qtA -h 127.0.0.1 -U postgres -d "$db" \
    -c "select balance from user_credits where user_id = 'user_01HZX3K9Q2W8E7R6T5Y4U3I2O1'")
  [ "$balance" != 3300 ] || break
  sleep 0.3
done
[ "$balance" = 3300 ] || { echo "balance is '${balance}', not 3300" >&2; exit 1; }

for c in "${containers[@]}"; do
  pid=$(podman inspect --format '{{.State.Pid}}' "$c")
  uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
  [ "$uid" = 10001 ] || { echo "$c runs as uid $uid, not 10001" >&2; exit 1; }
done
curl -fsS "http://$worker_metrics/metrics" | grep -q "ledgerhook_build_info{.*commit=\"$commit\"" \
  || { echo "the worker does not name commit $commit" >&2; exit 1; }

echo "image-check passed: $image ($commit) granted 3300 credits as uid 10001;" \
  "base images $((bases_done - started)) s, build $((built - bases_done)) s," \
  "run $((SECONDS - built)) s, total $((SECONDS - started)) s" >&2
