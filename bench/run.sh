#!/usr/bin/env bash
# The benchmark: gatehouse against a bare actix-web baseline (bench/baseline.rs) in one run,
# loopback only, bounded in time. Each case starts a fresh server pinned to one core
# (SERVER_CPU, default 0) with one worker; wrk runs on the other (LOAD_CPU, default 1). The
# server's CPU time (utime+stime from /proc) divided by the requests it served is the figure
# compared with the baseline's. Prints one table; bench/README.md explains it.
#   bench/run.sh              # full run, DURATION seconds per case (default 5), ROUNDS (default
#                             # 3) paired with a fresh baseline run each: about 10 minutes of
#                             # load after the release builds (fat LTO: several minutes each).
#                             # A round runs both servers side by side on the server core and
#                             # alternates the load between them in SLICES (default 5) slices,
#                             # so both sides of a ratio see the same seconds of the machine
#   bench/run.sh --smoke      # 1 s per case, small token sets, debug builds: checks it works
#   ONLY='401|429' bench/run.sh   # only the cases whose name matches (and the baseline)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_wrk

smoke=0
[ "${1:-}" = "--smoke" ] && smoke=1
duration="${DURATION:-5}"
ROUNDS="${ROUNDS:-3}"
slices="${SLICES:-5}"
conns="${CONNECTIONS:-32}"
es_count=20000 rs_count=3000 flood=100000
profile=release
if (( smoke )); then
  duration=1 es_count=500 rs_count=50 flood=2000 profile=dev ROUNDS=1 slices=1
fi
server_cpu="${SERVER_CPU:-0}"
load_cpu="${LOAD_CPU:-1}"
port="${PORT:-18080}"
target=release
[ "$profile" = dev ] && target=debug

cargo build --quiet --profile "$profile" --bin gatehouse
work="$(mktemp -d)"
cp "target/$target/gatehouse" "$work/gatehouse"
cargo build --quiet --profile "$profile" --example baseline --example issuer
cp "target/$target/examples/baseline" "target/$target/examples/issuer" "$work/"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# The issuer: RSA and EC keys, a JWKS over HTTP, tokens with distinct subjects.
audience="http://127.0.0.1:$port/mcp"
"$work/issuer" "$work" "$audience" "$(( es_count > flood ? es_count : flood ))" "$rs_count" "$es_count" &
pids+=($!)
for _ in $(seq 600); do [ -s "$work/url" ] && break; sleep 0.1; done
issuer="$(cat "$work/url")"
head -n "$es_count" "$work/es256.txt" >"$work/es-first-seen.txt"
head -n "$flood" "$work/es256.txt" >"$work/flood.txt"
token="$(head -n1 "$work/es256.txt")"
bad="${token%?????}AAAAA"

base_env=(PATH="$PATH" PORT="$port" RUST_LOG=warn GATEHOUSE_SERVER__WORKERS=1
  OAUTH_ISSUER="$issuer" OAUTH_JWKS_URI="$issuer/keys" EXPECTED_AUDIENCE="$audience"
  GATEHOUSE_RATE_LIMIT__ENABLED=false)
# BENCH_SERVER_ENV (space-separated NAME=value) adds settings to every server: .ci/run's negative
# control breaks gatehouse with it and expects the benchmark to fail.
read -r -a extra_env <<<"${BENCH_SERVER_ENV:-}"
base_env+=("${extra_env[@]}")
server=0
start_on() { # PORT BINARY ENV...: the server's pid in $server
  local on="$1" bin="$2"; shift 2
  env -i "${base_env[@]}" "$@" PORT="$on" taskset -c "$server_cpu" "$bin" >>"$work/server.log" 2>&1 &
  server=$!
  pids+=("$server")
  wait_for "$on"
}
start() { start_on "$port" "$@"; } # BINARY ENV...
stop() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
hwm_kib() { awk '/^VmHWM/{print $2}' "/proc/$1/status"; }
rss_kib() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }

declare -A base_bin base_path base_method base_body base_extra
ticks="$(getconf CLK_TCK)"
printf '%-44s %9s %8s %8s %9s %8s %6s %9s\n' case 'req/s' p50_ms p99_ms CPU_us/req base_us ratio peak_MiB
measure() { measure_on "$server" "$port" "$1"; } # PATH
measure_on() { # PID PORT PATH, with the load's settings in the environment: sets m_*
  local pid="$1" on="$2" path="$3" t0 t1 out errors
  t0="$(cpu_ticks "$pid")"
  out="$(taskset -c "$load_cpu" wrk -t1 -c"$conns" -d"${D:-$duration}s" -s bench/load.lua \
    "http://127.0.0.1:$on$path" | grep '^RESULT')"
  t1="$(cpu_ticks "$pid")"
  m_ticks=$(( t1 - t0 ))
  read -r m_requests m_rps m_p50 m_p99 errors m_non2xx m_unexpected <<<"$(sed 's/[a-z0-9_]*=//g; s/^RESULT //' <<<"$out")"
  # A load that stops after a fixed number of requests idles for the rest of the duration.
  if [ -n "${TOKENS:-}" ] || [ -n "${PROOFS:-}" ] || [ "${LIMIT:-0}" != 0 ]; then m_rps="($m_requests)"; fi
  m_us="$(awk -v d=$(( t1 - t0 )) -v n="$m_requests" -v hz="$ticks" 'BEGIN{printf "%.1f", n ? d * 1e6 / hz / n : 0}')"
  m_hwm="$(awk -v k="$(hwm_kib "$pid")" 'BEGIN{print k / 1024}')"
  if [ "${EXPECT_STATUS:-2xx}" = 2xx ] && (( m_non2xx > 0 )); then
    echo "  ^ $m_non2xx responses were not 2xx (errors: $errors); see $work/server.log" >&2
    exit 1
  fi
  # A refusal case must measure that refusal: every response has the expected status (but the
  # few a budget lets through first, EXPECT_SLACK).
  if [ "${EXPECT_STATUS:-2xx}" != 2xx ] && (( m_requests == 0 || m_unexpected > ${EXPECT_SLACK:-0} )); then
    echo "  ^ $m_unexpected of $m_requests responses were not $EXPECT_STATUS; see $work/server.log" >&2
    exit 1
  fi
}
median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
baseline_run() { # KEY: the baseline KEY names, run again as it was (fresh server, one load)
  local key="$1" extra
  # The case's load settings are in the environment. The baseline gets the same request
  # headers (bearer token, token file, client addresses, extra headers), so both sides of a
  # ratio receive the same bytes, as in the issue's table; its own method, path and body
  # replace the case's, and it runs for the full duration.
  local -x METHOD="${base_method[$key]}" BODY="${base_body[$key]}" LIMIT=0 EXPECT_STATUS=2xx D=""
  read -r -a extra <<<"${base_extra[$key]}"
  start "${base_bin[$key]}" "${extra[@]}"
  measure "${base_path[$key]}"
  stop
}
# One round of a case whose every request is the same (no token file, no request limit): the
# case's server and a fresh baseline run side by side on the server core, and the load
# alternates between them in SLICES slices of DURATION/SLICES seconds, the baseline first.
# Sets r_us and r_base (CPU us per request of each over the round) and m_* (the case's last
# slice; m_rps over all of them).
interleaved_round() { # KEY BINARY PATH [ENV...]
  local key="$1" bin="$2" path="$3" s gt=0 gn=0 bt=0 bn=0 gpid bpid extra
  shift 3
  read -r -a extra <<<"${base_extra[$key]}"
  start_on "$(( port + 1 ))" "${base_bin[$key]}" "${extra[@]}"; bpid=$server
  start "$bin" "$@"; gpid=$server
  local slice; slice="$(( ${D:-$duration} / slices ))"; (( slice >= 1 )) || slice=1
  for (( s = 0; s < slices; s++ )); do
    (
      export METHOD="${base_method[$key]}" BODY="${base_body[$key]}" EXPECT_STATUS=2xx D="$slice"
      measure_on "$bpid" "$(( port + 1 ))" "${base_path[$key]}"
      echo "$m_ticks $m_requests"
    ) >"$work/slice"
    read -r t n <"$work/slice"; bt=$(( bt + t )); bn=$(( bn + n ))
    D="$slice" measure_on "$gpid" "$port" "$path"
    gt=$(( gt + m_ticks )); gn=$(( gn + m_requests ))
  done
  kill "$bpid" "$gpid" 2>/dev/null || true; wait "$bpid" "$gpid" 2>/dev/null || true
  r_us="$(awk -v d="$gt" -v n="$gn" -v hz="$ticks" 'BEGIN{printf "%.1f", n ? d * 1e6 / hz / n : 0}')"
  r_base="$(awk -v d="$bt" -v n="$bn" -v hz="$ticks" 'BEGIN{printf "%.1f", n ? d * 1e6 / hz / n : 0}')"
  m_rps="$(awk -v n="$gn" -v t="$(( slice * slices ))" 'BEGIN{printf "%.0f", n / t}')"
}

# NAME BASELINE_KEY BINARY PATH [ENV...]: fresh servers per round. A baseline row ("=" as its
# key) is remembered; every other case runs ROUNDS times, each round paired with a fresh run
# of its baseline (interleaved with it, or right before it when the load reads a token file or
# stops at a limit), and prints the medians (CPU time, the baseline's, the per-round ratio), so
# a machine that drifts moves both sides of each ratio.
one() {
  local name="$1" key="$2" bin="$3" path="$4" r rounds us=() bases=() ratios=() base ratio
  shift 4
  if [ "$key" = = ]; then
    base_bin[$name]="$bin" base_path[$name]="$path" base_method[$name]="${METHOD:-POST}"
    base_body[$name]="${BODY:-}" base_extra[$name]="$*"
    start "$bin" "$@"; measure "$path"; stop
    printf '%-44s %9s %8s %8s %9s %8s %6s %9.1f\n' "$name" "$m_rps" "$m_p50" "$m_p99" "$m_us" \
      "$m_us" 1.00 "$m_hwm"
    return
  fi
  if [ -n "${ONLY:-}" ] && ! grep -qE "$ONLY" <<<"$name"; then return; fi
  if [ "$bin" = "$work/gatehouse-300" ] && [ ! -x "$bin" ]; then
    # The benchmark build (300 tools and a progress tool), built when first needed.
    cargo build --quiet --profile "$profile" --bin gatehouse --features bench-tools
    cp "target/$target/gatehouse" "$bin"
  fi
  rounds="${R:-$ROUNDS}"
  for (( r = 0; r < rounds; r++ )); do
    if [ -z "${TOKENS:-}" ] && [ -z "${PROOFS:-}" ] && [ "${LIMIT:-0}" = 0 ]; then
      interleaved_round "$key" "$bin" "$path" "$@"
      bases+=("$r_base"); us+=("$r_us")
    else
      # A token file is read once and a limit counts from the first request: one load each.
      baseline_run "$key"
      bases+=("$m_us")
      start "$bin" "$@"; measure "$path"; stop
      us+=("$m_us")
    fi
    ratios+=("$(awk -v a="${us[-1]}" -v b="${bases[-1]}" 'BEGIN{if (b > 0) printf "%.2f", a / b; else printf "-"}')")
    [ -n "${VERBOSE:-}" ] && echo "  round $r: ${us[-1]} us, baseline ${bases[-1]} us, ratio ${ratios[-1]}" >&2
  done
  base="$(printf '%s\n' "${bases[@]}" | median)"
  ratio="$(printf '%s\n' "${ratios[@]}" | median)"
  printf '%-44s %9s %8s %8s %9s %8s %6s %9.1f\n' "$name" "$m_rps" "$m_p50" "$m_p99" \
    "$(printf '%s\n' "${us[@]}" | median)" "$base" "$ratio" "$m_hwm"
}
rpc() { printf '{"jsonrpc":"2.0","id":1,"method":"%s"%s}' "$1" "${2:+,\"params\":$2}"; }
call='{"name":"greet_user","arguments":{"name":"bench"}}'

# The floor.
BODY="$(rpc tools/call "$call")" one "baseline POST (fixed JSON-RPC result)" = "$work/baseline" /mcp WORKERS=1
METHOD=GET one "baseline GET /health" = "$work/baseline" /health WORKERS=1
post="baseline POST (fixed JSON-RPC result)"

# Token kinds (README "Tokens from any issuer"), first while the proofs are fresh (their iat is
# the issuer's start; auth.dpop_max_age_secs is 300 here, and the proofs' htu is the public
# URL): an opaque token checked by introspection at the issuer (cached, and a new one each request: one call to the issuer's endpoint each, whose own
# CPU is not counted), a DPoP-bound token with a fresh proof each request, and the cheap 401s:
# an issuer nobody trusts (two issuers configured, so iss picks one), a replayed proof.
kinds=(SK_CLIENT_ID=gatehouse-rs "SK_CLIENT_SECRET=s3cr=t:&" GATEHOUSE_AUTH__INTROSPECTION=opaque)
BODY="$(rpc tools/call "$call")" TOKEN="$(head -n1 "$work/opaque.txt")" one "tools/call, opaque token (introspection cached)" "$post" "$work/gatehouse" /mcp "${kinds[@]}"
BODY="$(rpc tools/call "$call")" TOKENS="$work/opaque.txt" one "tools/call, a new opaque token each request" "$post" "$work/gatehouse" /mcp "${kinds[@]}"
BODY="$(rpc tools/call "$call")" TOKEN="$(cat "$work/bound.txt")" SCHEME=DPoP PROOFS="$work/proofs.txt" \
  one "tools/call, DPoP-bound token, a new proof each request" "$post" "$work/gatehouse" /mcp GATEHOUSE_AUTH__DPOP_MAX_AGE_SECS=300 PUBLIC_URL="http://127.0.0.1:$port"
EXPECT_STATUS=401 EXPECT_SLACK=1 BODY="$(rpc ping)" TOKEN="$(cat "$work/bound.txt")" SCHEME=DPoP HEADERS="DPoP: $(head -n1 "$work/proofs.txt")" \
  one "401, replayed DPoP proof" "$post" "$work/gatehouse" /mcp GATEHOUSE_AUTH__DPOP_MAX_AGE_SECS=300 PUBLIC_URL="http://127.0.0.1:$port"
EXPECT_STATUS=401 BODY="$(rpc ping)" TOKEN="$(cat "$work/stranger.txt")" one "401, token of an untrusted issuer" "$post" "$work/gatehouse" /mcp \
  OAUTH_ISSUERS="$issuer/"

# The paths.
BODY="$(rpc tools/call "$call")" TOKEN="$token" one "tools/call greet_user (token seen)" "$post" "$work/gatehouse" /mcp
BODY="$(rpc tools/call "$call")" TOKENS="$work/es-first-seen.txt" one "tools/call, a new ES256 token each request" "$post" "$work/gatehouse" /mcp
BODY="$(rpc tools/call "$call")" TOKENS="$work/rs256.txt" one "tools/call, a new RS256 token each request" "$post" "$work/gatehouse" /mcp
# Traces on (the default sampler, every request sampled), exported to the issuer's OTLP sink.
BODY="$(rpc tools/call "$call")" TOKEN="$token" one "tools/call, traces on (3 spans exported)" "$post" "$work/gatehouse" /mcp \
  OTEL_EXPORTER_OTLP_ENDPOINT="$issuer"
BODY="$(rpc tools/list)" TOKEN="$token" one "tools/list" "$post" "$work/gatehouse" /mcp
BODY="$(rpc ping)" TOKEN="$token" one "ping" "$post" "$work/gatehouse" /mcp
EXPECT_STATUS=401 BODY="$(rpc ping)" one "401, no token" "$post" "$work/gatehouse" /mcp
EXPECT_STATUS=401 BODY="$(rpc ping)" TOKEN="$bad" one "401, bad signature" "$post" "$work/gatehouse" /mcp
EXPECT_STATUS=429 EXPECT_SLACK=3 BODY="$(rpc tools/call "$call")" TOKEN="$token" one "429, subject over its budget" "$post" "$work/gatehouse" /mcp \
  GATEHOUSE_RATE_LIMIT__ENABLED=true GATEHOUSE_RATE_LIMIT__REQUESTS_PER_MINUTE=1 GATEHOUSE_RATE_LIMIT__REQUESTS_BURST=1
METHOD=GET one "/health" "baseline GET /health" "$work/gatehouse" /health
BODY="$(rpc tools/call '{"name":"bench_progress","arguments":{},"_meta":{"progressToken":1}}')" TOKEN="$token" \
  HEADERS="Accept: text/event-stream, application/json" one "tools/call over SSE, 5 progress notifications" "$post" "$work/gatehouse-300" /mcp
BODY="$(rpc tools/call '{"name":"greet_user","arguments":{"name":"bench"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}')" TOKEN="$token" \
  HEADERS="MCP-Protocol-Version: 2026-07-28|Mcp-Method: tools/call|Mcp-Name: greet_user" \
  one "tools/call, 2026-07-28" "$post" "$work/gatehouse" /mcp

# Scaling with the registry's size, the token cache and the per-client budgets.
BODY="$(rpc tools/call "$call")" TOKEN="$token" one "tools/call, 300 tools registered" "$post" "$work/gatehouse-300" /mcp
BODY="$(rpc tools/list)" TOKEN="$token" one "tools/list, 300 tools, first page of 50" "$post" "$work/gatehouse-300" /mcp
BODY="$(rpc tools/list)" TOKEN="$token" one "tools/list, 300 tools, one page" "$post" "$work/gatehouse-300" /mcp \
  GATEHOUSE_MCP__PAGE_SIZE=300
# (Longer: every one of these tokens costs a signature check, and all of them must be seen.)
R=1 D=$(( smoke ? 2 : 30 )) BODY="$(rpc tools/call "$call")" TOKENS="$work/flood.txt" one "$flood distinct valid tokens" "$post" "$work/gatehouse" /mcp
# Requests without a token are keyed by address (a verified token's by its subject): a flood
# from 100,000 addresses, each refused 401 after its budget check.
R=1 D=$(( smoke ? 2 : 12 )) EXPECT_STATUS=401 BODY="$(rpc ping)" IPS="$flood" LIMIT="$(( flood * 3 / 2 ))" \
  one "$flood distinct client addresses (Fly-Client-IP), no token" "$post" "$work/gatehouse" /mcp \
  TRUSTED_PROXY=fly GATEHOUSE_RATE_LIMIT__ENABLED=true GATEHOUSE_RATE_LIMIT__REQUESTS_PER_MINUTE=100000 \
  GATEHOUSE_RATE_LIMIT__REQUESTS_BURST=100000

# Idle memory and start-up: the README's first command's configuration (the built-in
# development issuer, key already on disk), five starts each, the median.
startup() { # BINARY ENV...: milliseconds from exec to the first 200 on /health, then idle
  # anonymous memory (RssAnon: what the process holds) and the total resident size (VmRSS,
  # the binary's file pages included)
  local bin="$1"; shift
  env -i PATH="$PATH" PORT="$port" RUST_LOG=warn "$@" python3 - "$bin" "$port" <<'EOF'
import os, socket, subprocess, sys, time
bin, port = sys.argv[1], int(sys.argv[2])
t0 = time.monotonic()
p = subprocess.Popen([bin], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
while True:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        if s.recv(64).startswith(b"HTTP/1.1 200"):
            break
    except OSError:
        pass
    if time.monotonic() - t0 > 10:
        sys.exit("no 200 on /health within 10 s")
    time.sleep(0.0005)
ms = (time.monotonic() - t0) * 1000
time.sleep(2)
status = {l.split(":")[0]: l.split()[1] for l in open(f"/proc/{p.pid}/status") if l.startswith(("VmRSS", "RssAnon"))}
p.terminate(); p.wait()
print(f"{ms:.1f} {int(status['RssAnon']) / 1024:.1f} {int(status['VmRSS']) / 1024:.1f}")
EOF
}
keys="$work/dev-keys"
startup "$work/gatehouse" GATEHOUSE_AUTH__DEV_KEY_DIR="$keys" >/dev/null # creates the key
for name in baseline gatehouse; do
  for _ in 1 2 3 4 5; do
    if [ $name = baseline ]; then startup "$work/baseline"
    else startup "$work/gatehouse" GATEHOUSE_AUTH__DEV_KEY_DIR="$keys"; fi
  done >"$work/$name.startup"
  printf '%-44s start to first /health 200: %6s ms   idle RssAnon: %5s MiB (VmRSS %s MiB)\n' \
    "$name (median of 5)" "$(cut -d' ' -f1 "$work/$name.startup" | median)" \
    "$(cut -d' ' -f2 "$work/$name.startup" | median)" "$(cut -d' ' -f3 "$work/$name.startup" | median)"
done
echo "gatehouse $(git rev-parse --short HEAD 2>/dev/null || echo dev), $profile build, $(nproc) cores;" \
  "server on CPU $server_cpu (1 worker), wrk -t1 -c$conns -d${duration}s on CPU $load_cpu"
