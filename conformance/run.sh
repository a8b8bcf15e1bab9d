#!/usr/bin/env bash
# Runs the official MCP conformance suites (pinned in package.json) against gatehouse, with auth
# off (development switch) and with auth on behind a loopback proxy that adds a
# development-issuer token: 0.1.16 for the 2025 revisions, and 0.2.0-alpha.12 with
# `--requirements 2026-07-28` for the stateless revision (plus its pending header and schema
# scenarios, which must pass too). Usage: conformance/run.sh  (from anywhere; builds what it needs)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
cd "$root"

if [ ! -x "$here/node_modules/.bin/conformance" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --foreground-scripts)
fi
export PATH="$here/node_modules/.bin:$PATH"
node --version | grep -q '^v22\.' || { echo "conformance needs Node 22 from conformance/node_modules"; exit 1; }

cargo build --quiet --features conformance --bin gatehouse
bin="$root/target/debug/gatehouse"
keys="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$keys"; }
trap cleanup EXIT

. "$root/scripts/lib.sh"

# Runs a suite command with its output appended to FILE, printing the summary lines. Fails when
# the command fails or prints no summary at all (a suite that dies before its summary must not
# pass unseen).
run_logged() { # FILE CMD...
  local file="$1" out rc=0
  shift
  out="$(mktemp)"
  "$@" >"$out" 2>&1 || rc=$?
  cat "$out" >>"$file"
  grep -E 'Passed:|failed|Total:' "$out" || { echo "=== no summary from: $*"; rc=1; }
  rm -f "$out"
  return "$rc"
}

run_suite() { # label url
  echo "=== conformance ($1): $2"
  conformance server --url "$2" --expected-failures "$here/expected-failures.yml" -o "$here/results/$1" 2>&1 | tee "$here/results-$1.txt"
  local rc=${PIPESTATUS[0]}
  grep -q '^Total:' "$here/results-$1.txt" || { echo "=== conformance ($1) printed no summary"; rc=1; }
  echo "=== conformance ($1) exit code $rc"
  # The pending json-schema-2020-12 scenario must pass too (schema returned unaltered).
  echo "=== conformance ($1, pending): json-schema-2020-12"
  local rc2=0
  run_logged "$here/results-$1.txt" conformance server --url "$2" --scenario json-schema-2020-12 \
    -o "$here/results/$1-pending" || rc2=$?
  echo "=== conformance ($1, pending) exit code $rc2"
  [ "$rc" -eq 0 ] && [ "$rc2" -eq 0 ] || return 1
  run_modern "$@"
}

# The 2026-07-28 suite (0.2.0-alpha.12, installed under the alias conformance-next: its `conformance`
# command would clash with 0.1.16's, so it is run through node).
next_suite="$here/node_modules/conformance-next/dist/index.js"
tasks_scenarios="tasks-lifecycle tasks-capability-negotiation tasks-wire-fields tasks-request-state-removal
  tasks-mrtr-input tasks-request-headers tasks-dispatch-and-envelope tasks-status-notifications
  tasks-required-task-error tasks-mrtr-composition"
run_modern() { # label url
  echo "=== conformance 2026-07-28 ($1): $2"
  node "$next_suite" server --url "$2" --requirements 2026-07-28 \
    --expected-failures "$here/expected-failures-2026-07-28.yml" -o "$here/results/$1-2026" 2>&1 \
    | tee "$here/results-$1-2026.txt" | grep -vE '^\s+at ' | tail -40
  local rc=${PIPESTATUS[0]} s
  grep -q '^Total:' "$here/results-$1-2026.txt" || { echo "=== conformance 2026-07-28 ($1) printed no summary"; rc=1; }
  echo "=== conformance 2026-07-28 ($1) exit code $rc"
  for s in json-schema-2020-12 http-header-validation http-custom-header-server-validation; do
    echo "=== conformance 2026-07-28 ($1, pending): $s"
    run_logged "$here/results-$1-2026.txt" node "$next_suite" server --url "$2" --scenario "$s" \
      --spec-version 2026-07-28 -o "$here/results/$1-2026-pending" \
      || { echo "=== pending scenario $s failed"; rc=1; }
  done
  # The tasks extension's scenarios (SEP-2663): the suite runs them unscored under
  # --requirements, so each is run here on its own (--force: extension scenarios are not on the
  # revision's timeline) and must pass.
  for s in $tasks_scenarios; do
    echo "=== conformance 2026-07-28 ($1, tasks extension): $s"
    run_logged "$here/results-$1-2026.txt" node "$next_suite" server --url "$2" --scenario "$s" \
      --force -o "$here/results/$1-2026-tasks" \
      || { echo "=== tasks scenario $s failed"; rc=1; }
  done
  [ "$rc" -eq 0 ]
}

mkdir -p "$here/results"
common=(env GATEHOUSE_AUTH__DEV_KEY_DIR="$keys" GATEHOUSE_RATE_LIMIT__ENABLED=false RUST_LOG=warn)

# 1. Auth off.
p1="$(free_port)"
"${common[@]}" PORT="$p1" GATEHOUSE_AUTH__ENABLED=false "$bin" >/dev/null 2>"$here/results/server-open.log" &
pids+=($!)
wait_for "$p1"
status=0
run_suite open "http://127.0.0.1:$p1/mcp" || status=1

# 2. Auth on, through the token-adding proxy.
p2="$(free_port)"
p3="$(free_port)"
"${common[@]}" PORT="$p2" "$bin" >/dev/null 2>"$here/results/server-auth.log" &
pids+=($!)
wait_for "$p2"
token="$("${common[@]}" PORT="$p2" "$bin" token --sub conformance --scope admin --org conformance --ttl 1h)"
GATEHOUSE_TOKEN="$token" node "$here/auth-proxy.mjs" "$p3" "$p2" &
pids+=($!)
sleep 0.5
curl -fs -o /dev/null -w '' -X POST "http://127.0.0.1:$p3/mcp" -H 'content-type: application/json' \
  -H 'accept: application/json, text/event-stream' -d '{"jsonrpc":"2.0","id":1,"method":"ping"}' \
  || { echo "the auth proxy does not pass an authenticated ping"; exit 1; }
run_suite auth "http://127.0.0.1:$p3/mcp" || status=1

# Negative controls: each runner must be able to fail. Against a port nobody serves, the
# 2025 runner and the 2026-07-28 runner must both report failure; if either passes, this
# script cannot be trusted.
dead="$(free_port)"
echo "=== negative control: conformance against a dead endpoint must fail"
if run_logged /dev/null conformance server --url "http://127.0.0.1:$dead/mcp" --scenario ping; then
  echo "=== negative control passed: the 2025 runner cannot fail"; status=1
fi
if run_logged /dev/null node "$next_suite" server --url "http://127.0.0.1:$dead/mcp" --scenario tools-list \
  --spec-version 2026-07-28; then
  echo "=== negative control passed: the 2026-07-28 runner cannot fail"; status=1
fi
exit "$status"
