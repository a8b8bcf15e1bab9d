#!/usr/bin/env bash
# The official SDK clients against gatehouse with auth on (development issuer, a real token):
# the TypeScript SDK v2 client and the Python SDK 2.x client, each pinned to 2026-07-28, probing
# with server/discover (auto), and forced to the 2025 handshake (legacy). Each lists tools and
# calls greet_user. Installs the pinned clients itself (tests/clients).
# Usage: scripts/client-test.sh [path/to/gatehouse]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
. scripts/lib.sh
bin="${1:-target/debug/gatehouse}"
[ -x "$bin" ] || cargo build --quiet

(cd tests/clients && npm ci --no-audit --no-fund --silent)
venv="target/client-venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/clients/requirements.txt

keys="$(mktemp -d)"
port="$(free_port)"
env GATEHOUSE_AUTH__DEV_KEY_DIR="$keys" RUST_LOG=warn PORT="$port" "$bin" >/dev/null 2>"$keys/server.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$keys"' EXIT
wait_for "$port"
GATEHOUSE_TOKEN="$(env GATEHOUSE_AUTH__DEV_KEY_DIR="$keys" PORT="$port" "$bin" token --sub sdk-client --ttl 10m)"
export GATEHOUSE_TOKEN
url="http://127.0.0.1:$port/mcp"

status=0
for mode in pin auto legacy; do
  node tests/clients/ts-client.mjs "$url" "$mode" || status=1
done
for mode in 2026-07-28 auto legacy; do
  "$venv/bin/python" tests/clients/py_client.py "$url" "$mode" || status=1
done
exit "$status"
