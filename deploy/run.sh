#!/usr/bin/env bash
# Runs ledgerhook on this machine: makes sure PostgreSQL and RabbitMQ are up
# (installing them with apt-get where missing), builds the release binaries,
# then runs the ingester, WORKERS workers (default 1), the notifier when a
# NOTIFY_* channel is set, and, when AUTH_JWT_SECRET or AUTH_JWKS_URL is set,
# the frontend's API, in the foreground. With FAKE_CROSSMINT=1 the API (and the workers'
# reconcile, if RECONCILE_INTERVAL_SECS is set) talk to a local stand-in for
# Crossmint instead of Crossmint's staging API (a first try without keys).
# With FAKE_STRIPE=1 the API creates Stripe Checkout Sessions at a local
# stand-in for Stripe, and opening a session's URL "pays" it: the fake sends a
# signed checkout.session.completed to the ingester's /webhooks/stripe.
# Ctrl-C stops them all. Configuration comes from the environment (README).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${CROSSMINT_WEBHOOK_SECRET:-}${STRIPE_WEBHOOK_SECRET:-}" ] && [ "${FAKE_STRIPE:-0}" != 1 ]; then
  echo "Neither CROSSMINT_WEBHOOK_SECRET nor STRIPE_WEBHOOK_SECRET is set: export your provider's whsec_ secret (space-separate several during rotation)." >&2
  echo "For a local try, Svix's public test secret works: export CROSSMINT_WEBHOOK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" >&2
  exit 2
fi
deploy/prerequisites.sh
deploy/services.sh
# The commit each binary names in ledgerhook_build_info, read at compile
# time by its main alone (so a new commit rebuilds only the binaries).
export LEDGERHOOK_COMMIT="${LEDGERHOOK_COMMIT:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}"
cargo build --release -q -p ledgerhook-ingester -p ledgerhook-worker -p ledgerhook-api -p ledgerhook-admin \
  -p ledgerhook-notifier -p ledgerhook-tests

pids=()
stop() { kill "${pids[@]}" 2>/dev/null || true; wait; }
trap stop INT TERM EXIT
if [ "${FAKE_CROSSMINT:-0}" = 1 ]; then
  target/release/ledgerhook-fake-crossmint 127.0.0.1:18080 & pids+=($!)
  export CROSSMINT_API_URL=http://127.0.0.1:18080/api
  export CROSSMINT_SERVER_API_KEY=sk_staging_fake-key-for-tests
  export CROSSMINT_COLLECTION_ID=${CROSSMINT_COLLECTION_ID:-fake-collection}
fi
if [ "${FAKE_STRIPE:-0}" = 1 ]; then
  fake_stripe_addr=${FAKE_STRIPE_ADDR:-127.0.0.1:18090}
  ingester_addr=${LISTEN_ADDR:-127.0.0.1:8080}
  # The fake signs with the secret the ingester verifies with.
  export STRIPE_WEBHOOK_SECRET=${STRIPE_WEBHOOK_SECRET:-whsec_fake-stripe-signing-secret-for-tests}
  export STRIPE_API_URL=http://$fake_stripe_addr
  export STRIPE_SECRET_KEY=sk_test_fake-key-for-tests
  export STRIPE_SUCCESS_URL=${STRIPE_SUCCESS_URL:-http://localhost:3000/payment/success?session_id=\{CHECKOUT_SESSION_ID\}}
  export STRIPE_CANCEL_URL=${STRIPE_CANCEL_URL:-http://localhost:3000/payment/cancel}
  target/release/ledgerhook-fake-stripe "$fake_stripe_addr" "http://$ingester_addr/webhooks/stripe" & pids+=($!)
  cat >&2 <<TRY
Fake Stripe on http://$fake_stripe_addr (events to http://$ingester_addr/webhooks/stripe). To try it:
  token=\$(target/release/ledgerhook-token buyer-1)   # with your AUTH_JWT_SECRET
  curl -s -H "Authorization: Bearer \$token" -H 'Content-Type: application/json' \\
       -d '{"packageId":"pro","provider":"stripe"}' http://127.0.0.1:8081/api/payments/orders
  then open the answer's checkoutUrl (that pays the session), and ask
  curl -s -H "Authorization: Bearer \$token" -H 'Content-Type: application/json' \\
       -d '{"orderId":"cs_test_..."}' http://127.0.0.1:8081/api/payments/confirm
TRY
fi
target/release/ledgerhook-ingester & pids+=($!)
# Each worker needs its own metrics port: 9181, 9182, ...
base=${WORKER_METRICS_PORT_BASE:-9181}
for i in $(seq 0 $(( ${WORKERS:-1} - 1 ))); do
  METRICS_ADDR="127.0.0.1:$((base + i))" target/release/ledgerhook-worker & pids+=($!)
done
if [ -n "${NOTIFY_SMTP_URL:-}${NOTIFY_DISCORD_WEBHOOK_URL:-}${NOTIFY_FEISHU_WEBHOOK_URL:-}" ] \
   || { [ -n "${NOTIFY_CHANNELS:-}" ] && [ "${NOTIFY_CHANNELS}" != none ]; }; then
  target/release/ledgerhook-notifier & pids+=($!)
fi
if [ -n "${AUTH_JWT_SECRET:-}${AUTH_JWKS_URL:-}" ]; then
  target/release/ledgerhook-api & pids+=($!)
fi
wait -n
