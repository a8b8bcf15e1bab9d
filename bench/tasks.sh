#!/usr/bin/env bash
# What polling a task costs: tasks/get of a running task beside a tools/call, on the same
# gatehouse binary, with tasks in memory and in a local redis-server (REDIS_URL), and the bare
# actix-web baseline measured in the same run, alternating ROUNDS rounds (default 3). Prints
# CPU per request and its ratio to the baseline (the benchmark's usual form), req/s, p50/p99,
# and redis-server's CPU per request. Loopback only; the server pinned to SERVER_CPU (0), wrk
# to LOAD_CPU (1), one worker.
#   bench/tasks.sh [BINARY]   (default target/release/gatehouse; built when missing)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_wrk
command -v redis-server >/dev/null || apt-get install -y redis-server >/dev/null
bin="${1:-target/release/gatehouse}"
[ -x "$bin" ] || cargo build --quiet --release --bin gatehouse
[ -x target/release/examples/baseline ] || cargo build --quiet --release --example baseline
rounds="${ROUNDS:-3}"
duration="${DURATION:-5}"
server_cpu="${SERVER_CPU:-0}"
load_cpu="${LOAD_CPU:-1}"
port="$(free_port)"
rport="$(free_port)"
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no >/dev/null 2>&1 &
rpid=$!
pid=0
trap 'kill $rpid $pid 2>/dev/null || true' EXIT
sleep 0.3
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
hz="$(getconf CLK_TCK)"
v=2026-07-28
meta="\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"$v\",\"io.modelcontextprotocol/clientCapabilities\":{\"extensions\":{\"io.modelcontextprotocol/tasks\":{}}}}"
# LABEL: one load of DURATION seconds; prints "LABEL rps p50 p99 server_ticks redis_ticks requests"
load() {
  local label="$1" s0 r0 s1 r1 out
  s0="$(cpu "$pid")"; r0="$(cpu "$rpid")"
  out="$(taskset -c "$load_cpu" wrk -t1 -c32 -d"${duration}s" -s bench/load.lua "http://127.0.0.1:$port/mcp" | grep RESULT)"
  s1="$(cpu "$pid")"; r1="$(cpu "$rpid")"
  read -r n rps p50 p99 _ non2xx _ <<<"$(sed 's/[a-z0-9_]*=//g; s/^RESULT //' <<<"$out")"
  if (( non2xx > 0 )); then echo "$label: $non2xx responses were not 2xx" >&2; exit 1; fi
  echo "$label $rps $p50 $p99 $((s1 - s0)) $((r1 - r0)) $n"
}
round() {
  local keys t body id
  # The floor: bare actix-web answering a fixed JSON-RPC result.
  env -i PATH="$PATH" PORT="$port" WORKERS=1 taskset -c "$server_cpu" target/release/examples/baseline >/dev/null 2>&1 &
  pid=$!
  wait_for "$port"
  BODY='{"jsonrpc":"2.0","id":1,"result":{}}' load baseline
  kill "$pid"; wait "$pid" 2>/dev/null || true
  for store in memory redis; do
    keys="$(mktemp -d)"
    local url=""
    [ "$store" = redis ] && url="redis://127.0.0.1:$rport"
    env -i PATH="$PATH" PORT="$port" GATEHOUSE_AUTH__DEV_KEY_DIR="$keys" RUST_LOG=warn \
      GATEHOUSE_SERVER__WORKERS=1 GATEHOUSE_RATE_LIMIT__ENABLED=false ${url:+REDIS_URL="$url"} \
      taskset -c "$server_cpu" "$bin" >/dev/null 2>&1 &
    pid=$!
    wait_for "$port"
    t="$(env -i PATH="$PATH" PORT="$port" GATEHOUSE_AUTH__DEV_KEY_DIR="$keys" "$bin" token --sub bench --org bench)"
    body='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"greet_user","arguments":{"name":"b"}}}'
    TOKEN="$t" BODY="$body" load "$store:tools/call"
    # A task that outlives the load: export_report, 100 sections of a minute each.
    id="$(curl -s "http://127.0.0.1:$port/mcp" -H 'content-type: application/json' \
      -H 'accept: application/json, text/event-stream' -H "authorization: Bearer $t" \
      -H "mcp-protocol-version: $v" -H 'mcp-method: tools/call' -H 'mcp-name: export_report' \
      -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"export_report\",\"arguments\":{\"sections\":100,\"seconds_per_section\":60},$meta}}" \
      | sed -n 's/.*"taskId":"\([^"]*\)".*/\1/p')"
    [ -n "$id" ] || { echo "no task was created" >&2; exit 1; }
    TOKEN="$t" HEADERS="MCP-Protocol-Version: $v|Mcp-Method: tasks/get|Mcp-Name: $id" \
      BODY="{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tasks/get\",\"params\":{\"taskId\":\"$id\",$meta}}" \
      load "$store:tasks/get"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$keys"
  done
}
for _ in $(seq "$rounds"); do round; done | awk -v hz="$hz" '
  {k=$1; rps[k]+=$2; p50[k]+=$3; p99[k]+=$4; st[k]+=$5; rt[k]+=$6; n[k]+=$7; c[k]++; order[k]=NR}
  END {
    base = st["baseline"] * 1e6 / hz / n["baseline"]
    printf "%-20s %8s %8s %8s %12s %6s %14s\n", "case", "req/s", "p50_ms", "p99_ms", "CPU_us/req", "ratio", "redis_us/req"
    for (k in rps) {
      us = st[k] * 1e6 / hz / n[k]
      printf "%-20s %8d %8.2f %8.2f %12.1f %6.2f %14.1f\n", k, rps[k]/c[k], p50[k]/c[k], p99[k]/c[k], us, us/base, rt[k] * 1e6 / hz / n[k]
    }
  }' | sort
