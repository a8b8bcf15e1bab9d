#!/usr/bin/env bash
# CI: runs scripts/smoke.sh against the release binary in the production profile. The issuer is
# a second gatehouse in the development profile (its built-in issuer serves discovery and a key
# set over HTTP, and `gatehouse token` signs with its key), so no account or extra tool is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin="$PWD/target/release/gatehouse"
keys="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$keys"; }
trap cleanup EXIT
. scripts/lib.sh

issuer_port="$(free_port)"
app_port="$(free_port)"
dev=(env -i PATH="$PATH" PORT="$issuer_port" GATEHOUSE_AUTH__DEV_KEY_DIR="$keys" RUST_LOG=warn)
"${dev[@]}" "$bin" >/dev/null 2>&1 &
pids+=($!)
wait_for "$issuer_port"

# A tool that asks the client (admin_action) makes production insist on a shared sealing key.
state_key="$(head -c 32 /dev/urandom | base64)"
env -i PATH="$PATH" APP_ENV=production PORT="$app_port" PUBLIC_URL="http://127.0.0.1:$app_port" \
  OAUTH_ISSUER="http://localhost:$issuer_port/dev-issuer" MCP_STATE_KEY="$state_key" RUST_LOG=info \
  "$bin" 2>"$keys/app.log" &
pids+=($!)
wait_for "$app_port"
wait_for "$app_port" /ready
grep -q "production profile" "$keys/app.log" || { echo "not in the production profile"; cat "$keys/app.log"; exit 1; }

token="$("${dev[@]}" "$bin" token --sub smoke --scope tools --org smoke-org --aud "http://127.0.0.1:$app_port/mcp" --ttl 10m)"
scripts/smoke.sh "http://127.0.0.1:$app_port" "$token"

# The smoke test must be able to fail: a deployment whose metadata names another URL.
if scripts/smoke.sh "http://127.0.0.1:$issuer_port" >"$keys/negative.txt"; then
  echo "smoke.sh passed against a misconfigured deployment:"; cat "$keys/negative.txt"; exit 1
fi
grep -q "FAIL  metadata resource" "$keys/negative.txt" || { cat "$keys/negative.txt"; exit 1; }
echo "smoke.sh correctly fails against a deployment whose metadata names another URL"
