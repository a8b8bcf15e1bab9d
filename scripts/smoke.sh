#!/usr/bin/env bash
# Smoke test for any gatehouse deployment, with curl only.
#   scripts/smoke.sh BASE_URL [TOKEN]
# BASE_URL is the public base (e.g. https://my-app.fly.dev); MCP_PATH overrides /mcp.
# Without TOKEN: health, metadata, and the 401 challenge. With TOKEN: also initialize,
# tools/list, a tools/call of greet_user, and the 403 step-up for admin_action when the token
# lacks the admin scope, the short curl form (no Accept header) of that call, and protocol
# revision 2026-07-28 (server/discover and a tools/call with its _meta and headers). ACCEPT
# overrides the Accept header of the other POSTs (default: what MCP clients send; any form
# that admits JSON works). One line per check; exit 1 on any failure.
set -u
accept="${ACCEPT:-application/json, text/event-stream}"
base="${1:-}"
token="${2:-}"
if [ -z "$base" ]; then
  echo "usage: $0 BASE_URL [TOKEN]" >&2
  exit 2
fi
base="${base%/}"
path="${MCP_PATH:-/mcp}"
endpoint="$base$path"
passed=0
failed=0
extra=()
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

ok() { passed=$((passed + 1)); echo "ok    $1"; }
fail() { failed=$((failed + 1)); echo "FAIL  $1"; }

# request NAME METHOD URL [BODY] [TOKEN] -> sets $status, files $tmp/NAME.body and $tmp/NAME.head
request() {
  local name="$1" method="$2" url="$3" body="${4:-}" tok="${5:-}"
  local args=(-s -o "$tmp/$name.body" -D "$tmp/$name.head" -w '%{http_code}' -X "$method" --max-time 20)
  if [ -n "$body" ]; then
    args+=(-H 'Content-Type: application/json' --data "$body")
    if [ -n "$accept" ]; then
      args+=(-H "Accept: $accept")
    fi
  fi
  if [ -n "$tok" ]; then
    args+=(-H "Authorization: Bearer $tok")
  fi
  args+=("${extra[@]}")
  status="$(curl "${args[@]}" "$url" 2>/dev/null)" || status="000"
}
header() { grep -i "^$1:" "$tmp/$2.head" | head -1 | cut -d: -f2- | tr -d '\r' | sed 's/^ *//'; }
body_has() { grep -q -- "$1" "$tmp/$2.body"; }

# 1. Health.
request health GET "$base/health"
if [ "$status" = 200 ] && body_has '"status":"healthy"' health; then
  ok "GET /health: 200 healthy"
else
  fail "GET /health: expected 200 with status healthy, got $status"
fi

# 2. Protected resource metadata; its resource must be the endpoint.
meta_url="$base/.well-known/oauth-protected-resource$path"
request meta GET "$meta_url"
resource="$(sed -n 's/.*"resource" *: *"\([^"]*\)".*/\1/p' "$tmp/meta.body" 2>/dev/null)"
if [ "$status" != 200 ]; then
  fail "GET $meta_url: expected 200, got $status"
elif [ "$resource" != "$endpoint" ]; then
  fail "metadata resource: expected \"$endpoint\", got \"$resource\" (check PUBLIC_URL; a trailing slash counts)"
elif ! body_has '"authorization_servers"' meta; then
  fail "metadata: expected authorization_servers, none found"
else
  ok "metadata: resource is $endpoint"
fi

# 3. The 401 challenge and its resource_metadata URL.
init='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"smoke","version":"1"}}}'
request noauth POST "$endpoint" "$init"
challenge="$(header www-authenticate noauth)"
if [ "$status" != 401 ] || [ -z "$challenge" ]; then
  fail "POST $path without a token: expected 401 with WWW-Authenticate, got $status${challenge:+ ($challenge)}"
else
  ok "POST $path without a token: 401 with WWW-Authenticate"
  rm_url="$(echo "$challenge" | sed -n 's/.*resource_metadata="\([^"]*\)".*/\1/p')"
  if [ -z "$rm_url" ]; then
    fail "challenge: expected resource_metadata=\"...\", got: $challenge"
  else
    request rm GET "$rm_url"
    if [ "$status" = 200 ] && body_has "\"resource\":\"$endpoint\"" rm; then
      ok "challenge resource_metadata $rm_url answers 200"
    else
      fail "challenge resource_metadata $rm_url: expected 200 describing $endpoint, got $status"
    fi
  fi
fi

if [ -n "$token" ]; then
  request init POST "$endpoint" "$init" "$token"
  if [ "$status" = 200 ] && body_has '"protocolVersion"' init; then
    ok "initialize: 200 ($(sed -n 's/.*"protocolVersion":"\([^"]*\)".*/\1/p' "$tmp/init.body"))"
  else
    fail "initialize with the token: expected 200 with a protocolVersion, got $status $(head -c 200 "$tmp/init.body")"
  fi
  request list POST "$endpoint" '{"jsonrpc":"2.0","id":2,"method":"tools/list"}' "$token"
  if [ "$status" = 200 ] && body_has '"tools"' list; then
    ok "tools/list: 200"
  else
    fail "tools/list: expected 200 with tools, got $status $(head -c 200 "$tmp/list.body")"
  fi
  request call POST "$endpoint" '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"greet_user","arguments":{"name":"smoke"}}}' "$token"
  if [ "$status" = 200 ] && body_has 'Hi smoke, welcome!' call; then
    ok "tools/call greet_user: Hi smoke, welcome!"
  else
    fail "tools/call greet_user: expected 200 with \"Hi smoke, welcome!\", got $status $(head -c 200 "$tmp/call.body")"
  fi
  # The short form a curl user types: no Accept header of ours (curl sends */*).
  saved_accept="$accept"
  accept=""
  request short POST "$endpoint" '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"greet_user","arguments":{"name":"Saif"}}}' "$token"
  accept="$saved_accept"
  if [ "$status" = 200 ] && body_has 'Hi Saif, welcome!' short; then
    ok "short curl form (no Accept): tools/call greet_user answered as JSON"
  else
    fail "short curl form (no Accept): expected 200 with \"Hi Saif, welcome!\", got $status $(head -c 200 "$tmp/short.body")"
  fi
  # Protocol revision 2026-07-28: no handshake; _meta and the standard headers on each request.
  meta='"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}'
  extra=(-H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: server/discover')
  request discover POST "$endpoint" "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"server/discover\",\"params\":{$meta}}" "$token"
  if [ "$status" = 200 ] && body_has '"supportedVersions":\["2026-07-28"' discover; then
    ok "2026-07-28 server/discover: 200"
  else
    fail "2026-07-28 server/discover: expected 200 listing 2026-07-28, got $status $(head -c 200 "$tmp/discover.body")"
  fi
  extra=(-H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: tools/call' -H 'Mcp-Name: greet_user')
  request modern POST "$endpoint" "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":\"greet_user\",\"arguments\":{\"name\":\"modern\"},$meta}}" "$token"
  extra=()
  if [ "$status" = 200 ] && body_has 'Hi modern, welcome!' modern && body_has '"resultType":"complete"' modern; then
    ok "2026-07-28 tools/call greet_user: complete"
  else
    fail "2026-07-28 tools/call greet_user: expected 200 with resultType complete, got $status $(head -c 200 "$tmp/modern.body")"
  fi
  # JSON only: with an event stream admin_action would ask the user to confirm, and curl cannot
  # answer.
  saved_accept="$accept"
  accept="application/json"
  request admin POST "$endpoint" '{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"admin_action","arguments":{"action":"smoke"}}}' "$token"
  accept="$saved_accept"
  step_up="$(header www-authenticate admin)"
  if [ "$status" = 403 ] && echo "$step_up" | grep -q 'error="insufficient_scope"' && echo "$step_up" | grep -q 'scope="admin"'; then
    ok "admin_action without the admin scope: 403 insufficient_scope"
  elif [ "$status" = 200 ]; then
    ok "admin_action: 200 (the token has the admin scope; use one without it to check the 403 step-up)"
  else
    fail "admin_action without the admin scope: expected 403 with insufficient_scope, got $status${step_up:+ ($step_up)}"
  fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
