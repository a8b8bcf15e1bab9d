# Shell helpers shared by the CI, conformance and benchmark scripts (source it; bash only).

# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits up to 10 s for GET http://127.0.0.1:PORT/PATH (default /health) to answer 2xx.
wait_for() { # PORT [PATH]
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$1${2:-/health}" >/dev/null && return 0
    sleep 0.1
  done
  echo "nothing answered http://127.0.0.1:$1${2:-/health}" >&2
  return 1
}

# Installs wrk from the Debian packages when it is missing.
need_wrk() {
  command -v wrk >/dev/null || apt-get install -y wrk >/dev/null 2>&1 \
    || (apt-get update >/dev/null && apt-get install -y wrk >/dev/null)
}
