#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 30). Needs cargo-fuzz
# (`cargo install cargo-fuzz`); RUSTC_BOOTSTRAP lets the stable toolchain build the sanitizer
# instrumentation cargo-fuzz asks for.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${SECONDS_PER_TARGET:-30}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
for t in jsonrpc_message authorization_header jwks_parse jwt_verify www_authenticate; do
  echo "=== fuzz $t (${secs}s)"
  RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" -- -max_total_time="$secs" -max_len=4096 2>&1 | grep -E '^Done|ERROR|panicked' || true
done
