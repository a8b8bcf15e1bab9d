#!/usr/bin/env bash
# Same load against gatehouse and against the Node/Express pattern it replaces (bench/node),
# both validating ES256 tokens from gatehouse's development issuer. Bounded: DURATION seconds
# per scenario (default 10), 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_wrk
cargo build --release --quiet
(cd bench/node && [ -d node_modules ] || npm install --no-audit --no-fund >/dev/null)
bin="$PWD/target/release/gatehouse"
duration="${DURATION:-10}"
conns="${CONNECTIONS:-64}"
gp=18090; np=18091
keys="$(mktemp -d)"
genv=(env -i PATH="$PATH" PORT="$gp" GATEHOUSE_AUTH__DEV_KEY_DIR="$keys" GATEHOUSE_RATE_LIMIT__ENABLED=false RUST_LOG=warn)
"${genv[@]}" "$bin" >/dev/null 2>&1 &
gpid=$!
trap 'kill $gpid ${npid:-} 2>/dev/null; rm -rf "$keys"' EXIT
wait_for "$gp"
ISSUER="http://localhost:$gp/dev-issuer" AUDIENCE="http://localhost:$gp/mcp" PORT="$np" node bench/node/server.mjs &
npid=$!
sleep 1.5
token="$("${genv[@]}" "$bin" token --sub bench --scope admin --ttl 1h)"
body='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"greet_user","arguments":{"name":"bench"}}}'
echo "tools/call greet_user, $(nproc) cores, wrk -t2 -c$conns -d${duration}s"
for target in "gatehouse:$gp" "node-express-sdk:$np"; do
  name="${target%%:*}"; port="${target##*:}"
  out="$(TOKEN="$token" BODY="$body" wrk -t2 -c"$conns" -d"${duration}s" -s bench/load.lua "http://127.0.0.1:$port/mcp" | grep RESULT)"
  printf '%-18s %s\n' "$name" "${out#RESULT }"
done
