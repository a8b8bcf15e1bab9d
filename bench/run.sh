#!/usr/bin/env bash
# Load benchmark of gatehouse on 127.0.0.1 (bounded: DURATION seconds per scenario, default 10).
# Installs wrk if missing, builds the release binary, starts it in the development profile with
# the built-in issuer (ES256 tokens) and rate limits off, and prints one line per scenario.
#   bench/run.sh            # all scenarios
#   DURATION=5 CONNECTIONS=32 bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_wrk
cargo build --release --quiet
bin="$PWD/target/release/gatehouse"
duration="${DURATION:-10}"
conns="${CONNECTIONS:-64}"
port="${PORT:-18080}"
keys="$(mktemp -d)"
env_vars=(env -i PATH="$PATH" PORT="$port" GATEHOUSE_AUTH__DEV_KEY_DIR="$keys" GATEHOUSE_RATE_LIMIT__ENABLED=false RUST_LOG=warn)
"${env_vars[@]}" "$bin" >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$keys"' EXIT
wait_for "$port"
token="$("${env_vars[@]}" "$bin" token --sub bench --scope admin --org bench --ttl 1h)"
url="http://127.0.0.1:$port/mcp"

run() { # name token body
  local out
  out="$(TOKEN="$2" BODY="$3" wrk -t2 -c"$conns" -d"${duration}s" -s bench/call.lua "$url" | grep RESULT)"
  printf '%-28s %s\n' "$1" "${out#RESULT }"
}
echo "gatehouse $(git rev-parse --short HEAD 2>/dev/null || echo dev), $(nproc) cores, wrk -t2 -c$conns -d${duration}s"
run "ping (ES256 token check)" "$token" '{"jsonrpc":"2.0","id":1,"method":"ping"}'
run "tools/list" "$token" '{"jsonrpc":"2.0","id":1,"method":"tools/list"}'
run "tools/call greet_user" "$token" '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"greet_user","arguments":{"name":"bench"}}}'
run "401 (no token)" "" '{"jsonrpc":"2.0","id":1,"method":"ping"}'
