#!/usr/bin/env bash
# What a platform charges for an idle gatehouse: runs BIN in a memory cgroup of its own (cgroup
# v1, as root) after dropping the page cache, sends 3,000 requests (ping, tools/list,
# tools/call) on one connection, waits 3 s, and prints the process's VmRSS/RssAnon/RssFile and
# the cgroup's usage (page cache included), cache, rss and mapped_file.
#   bench/cgroup-memory.sh [BIN] [PORT]     (default: target/release/gatehouse, 18501)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-$ROOT/target/release/gatehouse}
PORT=${2:-18501}
CG=/sys/fs/cgroup/memory/gatehouse-bench-$$
mkdir "$CG"
trap 'for p in $(cat "$CG/tasks" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done; sleep 1; rmdir "$CG" 2>/dev/null || true' EXIT
sync
echo 3 > /proc/sys/vm/drop_caches
export GATEHOUSE_CONFIG_DIR="$ROOT/config" PORT GATEHOUSE_RATE_LIMIT__ENABLED=false
(echo "$BASHPID" > "$CG/tasks"; exec env RUST_LOG=warn "$BIN") > /dev/null 2>&1 &
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/ready" && break; sleep 0.1; done
TOKEN=$("$BIN" token --sub memory --ttl 1h 2>/dev/null | tail -1)
python3 - "$PORT" "$TOKEN" <<'PY'
import http.client, json, sys
port, token = int(sys.argv[1]), sys.argv[2]
c = http.client.HTTPConnection("127.0.0.1", port)
h = {"Authorization": "Bearer " + token, "Content-Type": "application/json",
     "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}
ok = 0
for i in range(3000):
    m = ["ping", "tools/list", "tools/call"][i % 3]
    p = {"name": "greet_user", "arguments": {"name": "hi"}} if m == "tools/call" else {}
    c.request("POST", "/mcp", json.dumps({"jsonrpc": "2.0", "id": i, "method": m, "params": p}), h)
    r = c.getresponse(); r.read(); ok += r.status == 200
assert ok == 3000, f"only {ok} of 3000 requests answered 200"
PY
sleep 3
PID=$(head -1 "$CG/tasks")
grep -E "VmRSS|RssAnon|RssFile" "/proc/$PID/status"
echo "cgroup usage: $(( $(cat "$CG/memory.usage_in_bytes") / 1024 )) kB"
grep -E "^(rss|cache|mapped_file) " "$CG/memory.stat" | awk '{printf "cgroup %s: %d kB\n", $1, $2/1024}'
