#!/usr/bin/env bash
# Makes sure PostgreSQL and RabbitMQ run on this machine (127.0.0.1, default
# ports), installing them with apt-get on a Debian machine where missing.
# Idempotent: does nothing when both already answer.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=
apt_install() {
  [ -n "$apt_updated" ] || { as_root apt-get update -qq; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}
wait_port() {
  for _ in $(seq 60); do port_open "$1" && return 0; sleep 1; done
  echo "$2 did not come up on port $1" >&2; return 1
}

if ! port_open 5432; then
  command -v pg_ctlcluster >/dev/null || apt_install postgresql postgresql-client
  version=$(ls /etc/postgresql | sort -V | tail -1)
  # Trust local TCP connections for the postgres user (a development machine).
  hba=/etc/postgresql/$version/main/pg_hba.conf
  # Read with root rights: the file is the postgres user's alone, and a
  # failed read must not look like "not there yet" (the lines would be
  # added again on every run).
  if ! as_root grep -q "ledgerhook" "$hba"; then
    as_root sed -i '1i # ledgerhook: trust loopback for development\nhost all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust' "$hba"
  fi
  # Start it, or (if the package's install already started it) reload the
  # authentication rules just added.
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null \
    || as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  wait_port 5432 PostgreSQL
fi
echo "PostgreSQL is up on 127.0.0.1:5432"

if ! port_open 5672; then
  # In /usr/sbin, which is not on a Debian user's PATH.
  [ -x /usr/sbin/rabbitmq-server ] || command -v rabbitmq-server >/dev/null \
    || apt_install rabbitmq-server
  # Without systemd (whose unit gives it 65,536 open files), Debian's
  # wrapper starts it through `su rabbitmq`, which resets the limit to 1,024:
  # enough for development and the tests, which delete their queues.
  as_root sh -c 'PATH="$PATH:/usr/sbin"; exec rabbitmq-server -detached' || true
  wait_port 5672 RabbitMQ
fi
# Its own metrics, per queue, for Prometheus (deploy/prometheus/prometheus.yml).
if ! port_open 15692; then
  as_root rabbitmq-plugins enable --quiet rabbitmq_prometheus >/dev/null || true
fi
echo "RabbitMQ is up on 127.0.0.1:5672"
