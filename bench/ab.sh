#!/usr/bin/env bash
# A/B of two gatehouse builds under the same load, alternating, ROUNDS rounds (default 3):
# ping (cached token), tools/call greet_user, and 401 (no token); req/s and the server's CPU
# time per request (utime+stime from /proc divided by requests). Loopback only.
#   bench/ab.sh OLD_BINARY NEW_BINARY
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_wrk
old="$1"
new="$2"
rounds="${ROUNDS:-3}"
port="${PORT:-18095}"
run_one() { # binary label
  local bin="$1" label="$2" keys pid t
  keys="$(mktemp -d)"
  env -i PATH="$PATH" PORT="$port" GATEHOUSE_AUTH__DEV_KEY_DIR="$keys" GATEHOUSE_RATE_LIMIT__ENABLED=false \
    RUST_LOG=warn "$bin" >/dev/null 2>&1 &
  pid=$!
  wait_for "$port"
  t="$(env -i PATH="$PATH" PORT="$port" GATEHOUSE_AUTH__DEV_KEY_DIR="$keys" "$bin" token --sub bench --scope admin)"
  for case in ping call 401; do
    local body tok s0 s1 out rps
    case $case in
      ping) body='{"jsonrpc":"2.0","id":1,"method":"ping"}'; tok=$t ;;
      call) body='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"greet_user","arguments":{"name":"b"}}}'; tok=$t ;;
      401) body='{"jsonrpc":"2.0","id":1,"method":"ping"}'; tok="" ;;
    esac
    s0="$(awk '{print $14+$15}' "/proc/$pid/stat")"
    out="$(TOKEN="$tok" BODY="$body" wrk -t1 -c32 -d5s -s bench/load.lua "http://127.0.0.1:$port/mcp" | grep RESULT)"
    s1="$(awk '{print $14+$15}' "/proc/$pid/stat")"
    rps="$(echo "$out" | sed 's/.*rps=\([0-9]*\).*/\1/')"
    echo "$label $case $rps $(( (s1 - s0) * 10000 / 5 ))"
  done
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  rm -rf "$keys"
}
for _ in $(seq "$rounds"); do
  run_one "$old" old
  run_one "$new" new
done | awk '{k=$1" "$2; r[k]+=$3; c[k]+=$4; n[k]++}
  END {for (k in r) printf "%-10s req/s %6d  CPU %5.1f us/request\n", k, r[k]/n[k], c[k]/r[k]}' | sort
