#!/usr/bin/env bash
# What sharing the budgets through Redis costs: the same gatehouse binary, rate limits on (with
# budgets too large to refuse anything), with and without REDIS_URL pointing at a local
# redis-server, alternating ROUNDS rounds (default 3). Prints req/s, p50/p99 and CPU per request
# of gatehouse and of redis-server. Loopback only.
#   bench/redis.sh [BINARY]   (default target/release/gatehouse)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_wrk
command -v redis-server >/dev/null || apt-get install -y redis-server >/dev/null
bin="${1:-target/release/gatehouse}"
rounds="${ROUNDS:-3}"
port="$(free_port)"
rport="$(free_port)"
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no >/dev/null 2>&1 &
rpid=$!
trap 'kill $rpid 2>/dev/null || true' EXIT
sleep 0.3
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
run_one() { # label [REDIS_URL]
  local label="$1" url="${2:-}" keys pid t body s0 s1 r0 r1 out
  keys="$(mktemp -d)"
  env -i PATH="$PATH" PORT="$port" GATEHOUSE_AUTH__DEV_KEY_DIR="$keys" RUST_LOG=warn \
    GATEHOUSE_RATE_LIMIT__REQUESTS_PER_MINUTE=1000000 GATEHOUSE_RATE_LIMIT__REQUESTS_BURST=1000000 \
    GATEHOUSE_RATE_LIMIT__TOOL_CALLS_PER_MINUTE=1000000 GATEHOUSE_RATE_LIMIT__TOOL_CALLS_BURST=1000000 \
    ${url:+REDIS_URL="$url"} "$bin" >/dev/null 2>&1 &
  pid=$!
  wait_for "$port"
  t="$(env -i PATH="$PATH" PORT="$port" GATEHOUSE_AUTH__DEV_KEY_DIR="$keys" "$bin" token --sub bench)"
  body='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"greet_user","arguments":{"name":"b"}}}'
  # Warm the verified-token cache.
  curl -s -o /dev/null "http://127.0.0.1:$port/mcp" -H 'content-type: application/json' \
    -H "authorization: Bearer $t" -d "$body"
  s0="$(cpu "$pid")"; r0="$(cpu "$rpid")"
  out="$(TOKEN="$t" BODY="$body" wrk -t1 -c32 -d5s -s bench/load.lua "http://127.0.0.1:$port/mcp" | grep RESULT)"
  s1="$(cpu "$pid")"; r1="$(cpu "$rpid")"
  echo "$label $(echo "$out" | sed 's/.*rps=\([0-9]*\) p50_ms=\([0-9.]*\) p99_ms=\([0-9.]*\).*/\1 \2 \3/') $((s1 - s0)) $((r1 - r0))"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$keys"
}
for _ in $(seq "$rounds"); do
  run_one memory
  run_one redis "redis://127.0.0.1:$rport"
done | awk '{k=$1; r[k]+=$2; p50[k]+=$3; p99[k]+=$4; c[k]+=$5; rc[k]+=$6; n[k]++}
  END {for (k in r) printf "%-7s tools/call  req/s %6d  p50 %5.2f ms  p99 %5.2f ms  gatehouse CPU %5.1f us/req  redis CPU %5.1f us/req\n",
    k, r[k]/n[k], p50[k]/n[k], p99[k]/n[k], c[k]*10000/(r[k]*5), rc[k]*10000/(r[k]*5)}' | sort
