#!/usr/bin/env bash
# User-space instructions per proxied request, counted by valgrind's callgrind: a figure
# that does not move with machine noise, for before/after comparisons of the request path.
#
#   bash bench/instructions.sh                 # ficus (telemetry on and off) and nginx
#   N=50000 bash bench/instructions.sh
#   PROXIES="ficus haproxy" KEEP_DIR=/tmp/cg bash bench/instructions.sh   # keep the profiles
#   BODY=1024 bash bench/instructions.sh       # POSTs with a 1,024-byte body instead of GETs
#   CACHE_SIM=1 bash bench/instructions.sh     # also L1 instruction and data cache misses
#   CONNS=1 bash bench/instructions.sh         # one request at a time (every request wakes the proxy)
#   PROXIES="ficus ficus-trace1 ficus-trace100" bash bench/instructions.sh
#                                              # [tracing] at 1 % and 100 %, spans to an OTLP sink
#   PROXIES="ficus ficus-base" FICUS_BASE_BIN=/path/to/other/ficus bash bench/instructions.sh
#                                              # this build against one built at another commit
#
# Each proxy runs under callgrind with one worker; ab sends N keep-alive requests (CONNS,
# default 8, connections) after a 1,000-request warm-up that is not counted (callgrind_control -z/-d
# brackets the measured part). Kernel work is not counted: compare with bench/proxy.sh's
# CPU-time figures for the whole picture. Loopback only; bounded by N.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-20000}
PROXIES=${PROXIES:-"ficus ficus-notel nginx haproxy"}
FICUS_BIN=${FICUS_BIN:-target/release/ficus}
FICUS_BASE_BIN=${FICUS_BASE_BIN:-}
SINK_PORT=${SINK_PORT:-18295}
UP_PORT=${UP_PORT:-18280}
PX_PORT=${PX_PORT:-18284}
BODY=${BODY:-0}
# ab's concurrent connections: with 8 a wake-up of the proxy usually finds several requests
# to serve; with 1 each request pays for its own (epoll_wait, the runtime's bookkeeping).
CONNS=${CONNS:-8}
# 1: callgrind also simulates the caches (the L1 sizes of the machine it runs on, 32 KiB
# each on ours) and the table gets L1i and L1d misses per request. About twice as slow.
CACHE_SIM=${CACHE_SIM:-0}
VG_ARGS=()
[ "$CACHE_SIM" = 1 ] && VG_ARGS=(--cache-sim=yes)

need() { command -v "$1" >/dev/null 2>&1; }
if ! need valgrind || ! need ab || ! need nginx || ! need haproxy; then
    apt-get update -qq && apt-get install -y -qq valgrind apache2-utils nginx haproxy >/dev/null
fi
[ -x "$FICUS_BIN" ] || { echo "build ficus first: cargo build --release" >&2; exit 1; }

TMP=$(mktemp -d /tmp/ficus-instr.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

AB_ARGS=()
if [ "$BODY" -gt 0 ]; then
    head -c "$BODY" /dev/zero | tr '\0' 'b' >"$TMP/body"
    AB_ARGS=(-p "$TMP/body" -T application/json)
fi

cat >"$TMP/up.conf" <<CONF
worker_processes 1;
daemon off;
pid $TMP/up.pid;
error_log $TMP/up.err;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$UP_PORT; location / { return 200 '{"id":1,"name":"a small json payload"}'; } }
}
CONF
nginx -c "$TMP/up.conf" -p "$TMP" &
PIDS+=($!)

# measure NAME CMD...: runs CMD under callgrind, prints instructions per request.
measure() {
    local name=$1
    shift
    valgrind --tool=callgrind "${VG_ARGS[@]}" --callgrind-out-file="$TMP/$name.cg" "$@" 2>"$TMP/$name.vg" &
    local pid=$!
    PIDS+=("$pid")
    for _ in $(seq 1 200); do
        curl -s -o /dev/null "http://127.0.0.1:$PX_PORT/" && break
        sleep 0.2
    done
    ab -q -k -c "$CONNS" -n 1000 "${AB_ARGS[@]}" "http://127.0.0.1:$PX_PORT/" >/dev/null 2>&1
    callgrind_control -z "$pid" >/dev/null 2>&1
    ab -q -k -c "$CONNS" -n "$N" "${AB_ARGS[@]}" "http://127.0.0.1:$PX_PORT/" >"$TMP/$name.ab" 2>&1
    callgrind_control -d "$pid" >/dev/null 2>&1
    sleep 1
    kill -INT "$pid" 2>/dev/null || true
    kill -QUIT "$pid" 2>/dev/null || true
    # HAProxy under valgrind ignores both: stop it hard (its profile was dumped above).
    sleep 2
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    local failed
    failed=$(grep -m1 "Failed requests" "$TMP/$name.ab" | awk '{print $3}')
    # The profile's own "events:" and "totals:" lines: Ir, and with the cache model I1mr,
    # D1mr and D1mw among the rest.
    awk -v name="$name" -v n="$N" -v failed="${failed:-?}" -v sim="$CACHE_SIM" '
        /^events:/ { for (i = 2; i <= NF; i++) ev[$i] = i - 1 }
        /^(totals|summary):/ { for (i = 2; i <= NF; i++) t[i - 1] = $i }
        END {
            printf "| %s | %d | %s | %d |", name, n, failed, t[ev["Ir"]] / n
            if (sim == 1) printf " %d | %d |", t[ev["I1mr"]] / n, (t[ev["D1mr"]] + t[ev["D1mw"]]) / n
            printf "\n"
        }' "$TMP/$name.cg.1"
}

ficus_conf() {
    cat >"$TMP/ficus-$1.toml" <<CONF
[[listener]]
bind = "127.0.0.1:$PX_PORT"
[upstream.legacy]
url = "http://127.0.0.1:$UP_PORT"
[default]
legacy = "legacy"
[access_log]
enabled = false
[admin]
bind = "127.0.0.1:0"
[telemetry]
enabled = $2
CONF
}
ficus_conf on true
ficus_conf off false
# Traced: the same, exporting to an OTLP/HTTP sink (bench/conf/otlp-sink.py). The exporter
# thread's instructions count too: callgrind counts every thread of the process.
for ratio in 1 100; do
    ficus_conf "trace$ratio" true
    printf '[tracing]\nendpoint = "http://127.0.0.1:%s"\nsample_ratio = %s\n' "$SINK_PORT" \
        "$(awk -v r="$ratio" 'BEGIN { print r / 100 }')" >>"$TMP/ficus-trace$ratio.toml"
done
if [[ " $PROXIES " == *" ficus-trace"* ]]; then
    python3 "$(dirname "$0")/conf/otlp-sink.py" "$SINK_PORT" "$TMP/sink.counts" &
    PIDS+=($!)
fi
cat >"$TMP/px.conf" <<CONF
worker_processes 1;
daemon off;
master_process off;
pid $TMP/px.pid;
error_log $TMP/px.err;
events { worker_connections 1024; }
http {
  access_log off;
  upstream up { server 127.0.0.1:$UP_PORT; keepalive 64; }
  server { listen 127.0.0.1:$PX_PORT; location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; } }
}
CONF

cat >"$TMP/haproxy.cfg" <<CONF
global
    nbthread 1
    maxconn 4096
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend fe
    bind 127.0.0.1:$PX_PORT
    default_backend up
backend up
    server up 127.0.0.1:$UP_PORT pool-max-conn 128
CONF

if [ "$CACHE_SIM" = 1 ]; then
    echo "| proxy | requests | failed | instructions/request | L1i misses/request | L1d misses/request |"
    echo "|---|---:|---:|---:|---:|---:|"
else
    echo "| proxy | requests | failed | instructions/request |"
    echo "|---|---:|---:|---:|"
fi
for p in $PROXIES; do
    case $p in
    ficus) FICUS_WORKER_THREADS=1 measure ficus "$FICUS_BIN" run -c "$TMP/ficus-on.toml" ;;
    ficus-notel) FICUS_WORKER_THREADS=1 measure ficus-notel "$FICUS_BIN" run -c "$TMP/ficus-off.toml" ;;
    ficus-trace1 | ficus-trace100)
        FICUS_WORKER_THREADS=1 measure "$p" "$FICUS_BIN" run -c "$TMP/$p.toml"
        ;;
    ficus-base)
        [ -x "$FICUS_BASE_BIN" ] || { echo "ficus-base: set FICUS_BASE_BIN to a ficus binary" >&2; continue; }
        FICUS_WORKER_THREADS=1 measure ficus-base "$FICUS_BASE_BIN" run -c "$TMP/ficus-on.toml"
        ;;
    nginx) measure nginx nginx -c "$TMP/px.conf" -p "$TMP" ;;
    haproxy) measure haproxy haproxy -db -f "$TMP/haproxy.cfg" ;;
    *) echo "unknown proxy $p (ficus, ficus-notel, ficus-trace1, ficus-trace100, ficus-base, nginx, haproxy)" >&2 ;;
    esac
done
[ -s "$TMP/sink.counts" ] && echo "OTLP sink: $(cat "$TMP/sink.counts")"
if [ -n "${KEEP_DIR:-}" ]; then
    mkdir -p "$KEEP_DIR"
    cp "$TMP"/*.cg.1 "$KEEP_DIR"/ 2>/dev/null || true
    echo "callgrind profiles kept in $KEEP_DIR (callgrind_annotate --inclusive=yes FILE)"
fi
