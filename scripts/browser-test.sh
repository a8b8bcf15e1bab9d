#!/usr/bin/env bash
# Browser-client test: headless Chromium loads tests/browser/client.html from an allowed origin
# and from a disallowed one (both on loopback), the page calls gatehouse with fetch and a
# Bearer token, and the DOM it leaves behind is checked. Then an MCP Apps host page
# (tests/browser/apps: AppBridge from @modelcontextprotocol/ext-apps, bundled here with esbuild)
# renders get_org_data's view in a sandboxed iframe with live data through gatehouse, and a
# screenshot of it is kept (target/browser-test/apps-view.png, BROWSER_TEST_ARTIFACTS to
# move it). Installs Chromium (Debian package) and the host's npm packages if missing.
# Usage: scripts/browser-test.sh [path/to/gatehouse]
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
# The pages: the client page, and the MCP Apps host page with its bundle.
pages="$work/pages"
mkdir -p "$pages"
cp tests/browser/client.html tests/browser/apps/host.html "$pages/"
if [ ! -d tests/browser/apps/node_modules/puppeteer-core ] || [ ! -x tests/browser/apps/node_modules/.bin/esbuild ]; then
  (cd tests/browser/apps && npm ci --no-audit --no-fund --foreground-scripts >/dev/null)
fi
tests/browser/apps/node_modules/.bin/esbuild tests/browser/apps/host.mjs --bundle --format=esm \
  --platform=browser --log-level=error --outfile="$pages/host.js"
(cd "$pages" && exec python3 -m http.server "$page_port" --bind 127.0.0.1 >/dev/null 2>&1) &
page_pid=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/health" >/dev/null && curl -sf "$allowed/client.html" >/dev/null && break
  sleep 0.1
done
token="$(env -i PATH="$PATH" PORT="$port" GATEHOUSE_AUTH__DEV_KEY_DIR="$work/keys" "$bin" token --sub browser-user --org org_browser)"

dom() { # ORIGIN PROFILE [PAGE]
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$work/profile-$2" --virtual-time-budget=15000 --dump-dom \
    "$1/${3:-client.html}#endpoint=http://127.0.0.1:$port/mcp&token=$token" 2>/dev/null \
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

# MCP Apps: the host page renders the view, which refreshes through the app-only tool;
# puppeteer-core drives this Chromium until the page says it is done, and keeps a screenshot.
artifacts="${BROWSER_TEST_ARTIFACTS:-target/browser-test}"
mkdir -p "$artifacts"
apps="$(CHROMIUM="$(command -v chromium)" node tests/browser/apps/run-host.mjs \
  "$allowed/host.html#endpoint=http://127.0.0.1:$port/mcp&token=$token" "$artifacts/apps-view.png" 2>/dev/null || true)"
[ -n "$apps" ] || apps='{}'
check "MCP Apps: get_org_data names its ui:// view, served as text/html;profile=mcp-app" \
  'r.get("resourceUri") == "ui://get_org_data/view.html" and r.get("mimeType") == "text/html;profile=mcp-app" and "refresh_org_data" in r.get("appOnly", [])' "$apps"
check "MCP Apps: AppBridge initializes the view in a sandboxed iframe" \
  'r.get("initialized") is True and not r.get("errors")' "$apps"
check "MCP Apps: the view refreshes through the app-only tool, and shows the organization's data" \
  'r.get("done") is True and "refresh_org_data" in r.get("calls", []) and all(s and s.get("organization") == "org_browser" and s.get("plan") == "standard" for s in r["shown"])' "$apps"
check "MCP Apps: a screenshot of the rendered view is kept ($artifacts/apps-view.png)" \
  'r' "$( [ -s "$artifacts/apps-view.png" ] && echo true || echo false)"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
