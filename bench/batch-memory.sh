#!/usr/bin/env bash
# Memory under batch abuse (hardening finding 2), release build on 127.0.0.1: RSS idle, then
# while 8 clients at a time send 1 MiB batches of 20,000 tools/list calls (refused with 400
# before parsing) and 20-item batches (the limit, answered), then again after the load.
#   bench/batch-memory.sh            # ROUNDS=25 rounds of 8 concurrent requests per shape
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
cargo build --release --quiet
bin="$PWD/target/release/gatehouse"
port="${PORT:-18081}"
rounds="${ROUNDS:-25}"
tmp="$(mktemp -d)"
env -i PATH="$PATH" PORT="$port" GATEHOUSE_AUTH__ENABLED=false GATEHOUSE_RATE_LIMIT__ENABLED=false \
  GATEHOUSE_AUTH__DEV_KEY_DIR="$tmp/keys" RUST_LOG=warn "$bin" >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
wait_for "$port"
rss() { awk '/VmRSS/ {t=$2} /RssAnon/ {a=$2} /RssFile/ {f=$2} END {printf "%.1f MiB (anonymous %.1f, file-backed %.1f)", t/1024, a/1024, f/1024}' "/proc/$pid/status"; }
python3 - "$tmp" <<'PY'
import json, sys
d = sys.argv[1]
def batch(n): return json.dumps([{"jsonrpc":"2.0","id":i,"method":"tools/list"} for i in range(n)], separators=(",", ":"))
open(f"{d}/huge.json","w").write(batch(20000))
open(f"{d}/max.json","w").write(batch(20))
PY
post() { curl -s -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:$port/mcp" \
  -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' --data-binary "@$1"; }
echo "idle:                 $(rss)"
for shape in huge max; do
  codes="$(for _ in $(seq "$rounds"); do for _ in 1 2 3 4 5 6 7 8; do post "$tmp/$shape.json" & done; wait; done | sort | uniq -c | tr -s ' ' | tr '\n' ';')"
  echo "after $((rounds * 8)) x $shape: $(rss)  (statuses:$codes $(wc -c <"$tmp/$shape.json") bytes each)"
done
sleep 2
echo "2 s after the load:   $(rss)"
sleep 62
echo "62 s later (after the minute's purge and trim): $(rss)"
