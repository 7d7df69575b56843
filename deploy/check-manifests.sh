#!/usr/bin/env bash
# Keeps the deployment files honest, offline. The Kubernetes manifests
# validate against the API's schemas (kubernetes-validate, from PyPI, in a
# virtualenv under target/; KEDA's and kustomize's own kinds have no schema
# there and are only parsed), and every environment variable they set is
# one some binary reads; every metric the alerts and the dashboard name is
# one some binary defines.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/deploy-lint-venv
# Whether some binary's source names this string literally (a variable it
# reads, a metric it defines).
named_in_code() { grep -rqF "\"$1\"" --include='*.rs' ingester worker api notifier admin console shared; }
[ -x "$venv/bin/kubernetes-validate" ] \
  || { python3 -m venv "$venv" && "$venv/bin/pip" install -q kubernetes-validate==1.37.0; }
"$venv/bin/kubernetes-validate" --strict --quiet --no-warn deploy/k8s/*.yaml

# Variables set: env entries' names, and the ConfigMap's keys.
set_vars=$( { grep -ohE 'name: [A-Z][A-Z0-9_]+' deploy/k8s/*.yaml | cut -d' ' -f2
              sed -n '/^data:/,$p' deploy/k8s/config.yaml | grep -oE '^  [A-Z][A-Z0-9_]+' | tr -d ' '; } | sort -u)
unread=()
for var in $set_vars; do
  named_in_code "$var" || unread+=("$var")
done
if [ ${#unread[@]} -gt 0 ]; then
  echo "deploy/k8s sets variables no binary reads: ${unread[*]}" >&2
  exit 1
fi
echo "deploy/k8s: manifests valid; $(echo "$set_vars" | wc -l) variables, each read by a binary"

# deploy/compose.yaml: it parses, and every variable it gives our image's
# services is one some binary reads (the other images' are theirs). Its
# Prometheus configuration is valid.
[ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import yaml' 2>/dev/null \
  || "$venv/bin/pip" install -q pyyaml==6.0.2
compose_vars=$("$venv/bin/python" - <<'PY'
import yaml
compose = yaml.safe_load(open("deploy/compose.yaml"))
names = set()
for name, service in compose["services"].items():
    if service.get("image") == "ledgerhook:local":
        names.update(service.get("environment", {}))
print("\n".join(sorted(names)))
PY
)
for var in $compose_vars; do
  named_in_code "$var" || unread+=("$var")
done
if [ ${#unread[@]} -gt 0 ]; then
  echo "deploy/compose.yaml sets variables no binary reads: ${unread[*]}" >&2
  exit 1
fi
(cd deploy/compose && cp ../prometheus/alerts.yml . && trap 'rm -f alerts.yml' EXIT \
  && promtool check config prometheus.yml >/dev/null)
amtool check-config deploy/compose/alertmanager.yml >/dev/null
echo "deploy/compose.yaml: $(echo "$compose_vars" | wc -l) variables, each read by a binary; its Prometheus and Alertmanager configurations are valid"

# Every ledgerhook metric the alert rules and the dashboard name is one a
# binary defines (RabbitMQ's own and Prometheus's `up` are theirs).
named=$(grep -ohE 'ledgerhook_[a-z_]+' deploy/prometheus/alerts.yml deploy/grafana/ledgerhook.json \
          | sed -E 's/_(bucket|count|sum)$//' | sort -u)
undefined=()
for metric in $named; do
  named_in_code "$metric" || undefined+=("$metric")
done
if [ ${#undefined[@]} -gt 0 ]; then
  echo "alerts or dashboard name metrics no binary defines: ${undefined[*]}" >&2
  exit 1
fi
echo "alerts and dashboard: $(echo "$named" | wc -l) ledgerhook metrics, each defined by a binary"
