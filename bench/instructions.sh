#!/usr/bin/env bash
# User-space instructions per request under callgrind: a deterministic figure to set beside
# bench/run.sh's CPU time, which moves +-5% between runs on a shared machine. Counts the
# server's own instructions only (the kernel's TCP work is not in them), for ping, tools/call
# greet_user and 401 (no token), after 300 warm-up requests (the load stops after a fixed count, so each case takes 19 s); the bare actix-web baseline
# (bench/baseline.rs) is measured the same way. Loopback only; about 1 minute per binary.
#   bench/instructions.sh                     # this tree's release build and the baseline
#   bench/instructions.sh OLD_BIN NEW_BIN     # any gatehouse builds, plus the baseline
# Read with care: valgrind hides SHA-NI from the program (so the token cache's SHA-256 runs
# the slower AVX code) and counts each byte of a `rep stosb` memset (actix's header arrays:
# about 9,300 of the baseline's instructions) as an instruction.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_wrk
command -v valgrind >/dev/null || apt-get install -y valgrind >/dev/null 2>&1 \
  || (apt-get update >/dev/null && apt-get install -y valgrind >/dev/null)
cargo build --quiet --release --example baseline
bins=("$@")
if (( ${#bins[@]} == 0 )); then
  cargo build --quiet --release --bin gatehouse
  bins=(target/release/gatehouse)
fi
port="${PORT:-18097}"
work="$(mktemp -d)"
trap 'pkill -f "callgrind-out-file=$work" 2>/dev/null || true; rm -rf "$work"' EXIT

count() { # BINARY LABEL: prints "LABEL CASE INSTRUCTIONS_PER_REQUEST" for each case
  local bin="$1" label="$2" pid tok="" body r ir f
  env -i PATH="$PATH" PORT="$port" GATEHOUSE_AUTH__DEV_KEY_DIR="$work/keys" \
    GATEHOUSE_RATE_LIMIT__ENABLED=false GATEHOUSE_SERVER__WORKERS=1 WORKERS=1 RUST_LOG=warn \
    valgrind --tool=callgrind --callgrind-out-file="$work/cg.%p" "$bin" >/dev/null 2>"$work/valgrind.log" &
  pid=$!
  for _ in $(seq 300); do curl -fs -o /dev/null "http://127.0.0.1:$port/health" && break; sleep 0.2; done
  [ "$label" = baseline ] || tok="$(env -i PATH="$PATH" PORT="$port" GATEHOUSE_AUTH__DEV_KEY_DIR="$work/keys" \
    "$bin" token --sub bench --scope admin)"
  for case in ping tools/call 401; do
    case $case in
      tools/call) body='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"greet_user","arguments":{"name":"b"}}}' ;;
      *) body='{"jsonrpc":"2.0","id":1,"method":"ping"}' ;;
    esac
    local t="$tok"; [ "$case" = 401 ] && t=""
    TOKEN="$t" BODY="$body" LIMIT=300 wrk -t1 -c4 -d4s -s bench/load.lua "http://127.0.0.1:$port/mcp" >/dev/null
    callgrind_control -z "$pid" >/dev/null 2>&1
    r="$(TOKEN="$t" BODY="$body" LIMIT=2000 wrk -t1 -c4 -d15s -s bench/load.lua \
      "http://127.0.0.1:$port/mcp" | sed -n 's/^RESULT requests=\([0-9]*\).*/\1/p')"
    callgrind_control -d "$pid" >/dev/null 2>&1
    sleep 1
    f="$(ls -t "$work"/cg."$pid".* | head -1)"
    ir="$(awk '/^(summary|totals):/ {v=$2} END {print v}' "$f")"
    echo "$label $case $(( ir / r ))"
    callgrind_control -z "$pid" >/dev/null 2>&1
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

{
  count target/release/examples/baseline baseline
  for b in "${bins[@]}"; do count "$b" "$b"; done
} >"$work/counts"
printf '%-36s %-11s %14s %6s\n' build case instructions/req ratio
awk '$1 == "baseline" {base[$2] = $3} {row[NR] = $0} END {
  for (i = 1; i <= NR; i++) {
    split(row[i], f, " ")
    printf "%-36s %-11s %14d %6.2f\n", f[1], f[2], f[3], f[3] / base[f[2]]
  }
}' "$work/counts"
