#!/usr/bin/env bash
# The soak with faults (bench/soak.rs): two gatehouse instances sharing a local redis-server and
# the benchmark's issuer, load on both (both protocol eras, new subjects, listen streams, asking
# rounds across instances) and faults on a schedule: a key added, a key dropped, Redis paused
# and stopped, the issuer down, SIGTERM to one instance under load. Loopback only. Prints one
# report and fails when a 5xx (or any non-2xx) came outside a fault window, a valid token was
# refused, an invalid one accepted, a fault was not absorbed, or an ERROR line was logged.
#   bench/soak.sh            # release builds, SOAK_MINUTES (default 10)
#   bench/soak.sh --smoke    # debug builds, 1 minute (what .ci/run runs)
# SOAK_WORKERS (default 8) sets the steady load's concurrent requests per instance.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v redis-server >/dev/null || apt-get install -y redis-server >/dev/null 2>&1 \
  || (apt-get update >/dev/null && apt-get install -y redis-server >/dev/null)
profile=release target=release
if [ "${1:-}" = "--smoke" ]; then
  profile=dev target=debug
  export SOAK_MINUTES="${SOAK_MINUTES:-1}"
fi
cargo build --quiet --profile "$profile" --bin gatehouse --example soak
"target/$target/examples/soak" "target/$target/gatehouse"
