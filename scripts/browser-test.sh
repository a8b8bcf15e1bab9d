#!/usr/bin/env bash
# Browser-client test: headless Chromium loads tests/browser/client.html from an allowed origin
# and from a disallowed one (both on loopback), the page calls gatehouse with fetch and a
# Bearer token, and the DOM it leaves behind is checked. Installs Chromium (Debian package) if
# missing. Usage: scripts/browser-test.sh [path/to/gatehouse]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/debug/gatehouse}"
[ -x "$bin" ] || cargo build --quiet
if ! command -v chromium >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port="$(free_port)"
page_port="$(free_port)"
work="$(mktemp -d)"
cleanup() { kill "${server_pid:-}" "${page_pid:-}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# The page is served on 127.0.0.1 (allowed) and reached as localhost (another origin, refused).
allowed="http://127.0.0.1:$page_port"
# BROWSER_TEST_ALLOWED_ORIGINS replaces the allowed origin: .ci/run's negative control allows
# another one and expects the allowed-origin checks, and so the script, to fail.
env -i PATH="$PATH" PORT="$port" GATEHOUSE_AUTH__DEV_KEY_DIR="$work/keys" \
  ALLOWED_ORIGINS="${BROWSER_TEST_ALLOWED_ORIGINS:-$allowed}" RUST_LOG=warn "$bin" >"$work/server.out" 2>"$work/server.log" &
server_pid=$!
(cd tests/browser && exec python3 -m http.server "$page_port" --bind 127.0.0.1 >/dev/null 2>&1) &
page_pid=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/health" >/dev/null && curl -sf "$allowed/client.html" >/dev/null && break
  sleep 0.1
done
token="$(env -i PATH="$PATH" PORT="$port" GATEHOUSE_AUTH__DEV_KEY_DIR="$work/keys" "$bin" token --sub browser-user)"

dom() {
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$work/profile-$2" --virtual-time-budget=15000 --dump-dom \
    "$1/client.html#endpoint=http://127.0.0.1:$port/mcp&token=$token" 2>/dev/null \
    | sed -n 's/.*RESULTS \(.*\)<\/pre>.*/\1/p' | sed 's/&amp;/\&/g; s/&lt;/</g; s/&gt;/>/g; s/&quot;/"/g'
}

passed=0
failed=0
check() { if python3 -c "import json,sys; r=json.loads(sys.argv[1]); sys.exit(0 if ($2) else 1)" "$3" 2>/dev/null; then
    passed=$((passed + 1)); echo "ok    $1"; else failed=$((failed + 1)); echo "FAIL  $1: $3"; fi; }

good="$(dom "$allowed" a)"
[ -n "$good" ] || good='{}'
check "allowed origin: preflight with Mcp-Method and MCP-Protocol-Version passes, initialize succeeds" \
  'r.get("initialize") == "2025-11-25"' "$good"
check "allowed origin: tools/list succeeds" '"greet_user" in r.get("tools", [])' "$good"
check "allowed origin: tools/call succeeds" '"Browser" in r.get("call", "")' "$good"
check "allowed origin: a 401's WWW-Authenticate is readable by the page" \
  'r.get("unauthenticated_status") == 401 and (r.get("www_authenticate") or "").startswith("Bearer ") and "resource_metadata=" in r["www_authenticate"]' "$good"

bad="$(dom "http://localhost:$page_port" b)"
[ -n "$bad" ] || bad='{}'
check "disallowed origin: the browser blocks the call (a CORS refusal, the server reachable)" \
  'r.get("blocked") is True and r.get("error") == "TypeError" and r.get("reachable") is True and "initialize" not in r' "$bad"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
