#!/usr/bin/env bash
# The demo, on a fresh machine: installs what is missing, builds everything, then starts the
# Blue Button sandbox emulator (http://127.0.0.1:8123, standing in for CMS), the broker with
# its embedded SQLite store, and the vanilla example app it serves (http://localhost:8080).
# Open the printed URL in Chromium or Chrome and click "Connect Medicare". Ctrl-C stops it.
#
# Ports: DEMO_PORT (default 8080), SANDBOX_PORT (default 8123) and SANDBOX_LOGIN_PORT (default
# 8124: the sandbox's Medicare login, on its own origin as Medicare.gov's is). DEMO_APP=react
# serves the React example instead of the plain HTML one. DEMO_EHR=1 adds a second provider,
# "Example Health": the sandbox's generic SMART face, with US Core records
# (docs/smart-servers.md); the vanilla example shows its conditions and lab results.
set -euo pipefail
cd "$(dirname "$0")/.."

app_port=${DEMO_PORT:-8080}
sandbox_port=${SANDBOX_PORT:-8123}
login_port=${SANDBOX_LOGIN_PORT:-8124}
demo=.demo
secret=demo-client-secret-not-for-production
log() { printf '==> %s\n' "$*" >&2; }

scripts/setup.sh
log "building the sandbox and the broker"
cargo build -p connect-medicare-sandbox -p connect-medicare-broker
log "building the npm package"
# The same size guards as the test command (tests/npm/payload.mjs).
scripts/build-npm.sh

log "assembling the example app in $demo/site"
mkdir -p "$demo"
rm -rf "$demo/site"
if [ "${DEMO_APP:-vanilla}" = react ]; then
  scripts/build-react-example.sh
  cp -r examples/react/dist "$demo/site"
else
  cp -r examples/vanilla "$demo/site"
  scripts/stage-npm.sh "$demo/site/connect-medicare"
fi

# A key of the demo's own, made once and kept (sessions survive restarts of the demo).
if [ ! -f "$demo/keys.toml" ]; then
  target/debug/connect-medicare-broker gen-key > "$demo/keys.toml"
fi
cat > "$demo/broker.toml" <<TOML
listen = "127.0.0.1:$app_port"
public_base_url = "http://localhost:$app_port"
database = "sqlite://broker.db"
static_dir = "site"
keys_file = "keys.toml"

[[providers]]
id = "medicare"
name = "Medicare"
kind = "blue_button"
base_url = "http://127.0.0.1:$sandbox_port"
client_id = "demo-client"
redirect_uri = "http://localhost:$app_port/callback"
# Blue Button's sign-in hops on to the Medicare login, on another origin: the app page's
# form-action must allow it for a form POST sign-in.
sign_in_origins = ["http://127.0.0.1:$login_port"]
TOML
if [ "${DEMO_EHR:-0}" = 1 ]; then
  cat >> "$demo/broker.toml" <<TOML

[[providers]]
id = "ehr"
name = "Example Health"
kind = "smart"
fhir_base_url = "http://127.0.0.1:$sandbox_port/smart/fhir/"
client_id = "demo-client"
redirect_uri = "http://localhost:$app_port/callback"
read = ["Patient", "Condition", "Observation", "AllergyIntolerance", "Immunization", "MedicationRequest"]
search = ["Patient", "ExplanationOfBenefit", "Condition", "Observation", "AllergyIntolerance", "Immunization", "MedicationRequest"]
TOML
fi

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

target/debug/connect-medicare-sandbox serve --listen "127.0.0.1:$sandbox_port" \
  --login-listen "127.0.0.1:$login_port" \
  --app "demo-client:$secret:http://localhost:$app_port/callback" &
pids+=($!)
secrets=("CM_BROKER_PROVIDERS__MEDICARE__CLIENT_SECRET=$secret")
if [ "${DEMO_EHR:-0}" = 1 ]; then secrets+=("CM_BROKER_PROVIDERS__EHR__CLIENT_SECRET=$secret"); fi
env "${secrets[@]}" \
  target/debug/connect-medicare-broker serve --config "$demo/broker.toml" &
pids+=($!)

# Ready when the broker reaches the sandbox.
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$app_port/readyz" >/dev/null 2>&1; then break; fi
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$app_port/readyz" >/dev/null

cat <<TXT

  Connect Medicare demo is running.

    Open   http://localhost:$app_port/   in Chromium or Chrome
    Sign in at the sandbox as BBUser00000 … BBUser00029
    with the password PW00000! … PW00029! (BBUser00009 has hundreds of claims)

  The sandbox (http://127.0.0.1:$sandbox_port) stands in for CMS; everything runs offline.
  Ctrl-C stops it.

TXT
wait
