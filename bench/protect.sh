#!/usr/bin/env bash
# Protection benchmark, two parts (see bench/README.md):
#
#  cache     cache-hit throughput and CPU per request: the same upstream as proxy.sh
#            (nginx, 1 KB JSON) behind nginx's proxy_cache and behind ficus's
#            [route.cache], every request for the same URL (all hits after the first),
#            driven by wrk. Proxy pinned to CPU $PROXY_CPU, wrk + upstream to $LOAD_CPU.
#  overload  behaviour at 2x overload: an upstream with a fixed capacity (WORKERS requests
#            at once, SERVICE_MS each) behind ficus with and without max_in_flight
#            shedding, driven by an open-loop client (conf/openloop.py) at OVERLOAD x the
#            capacity; goodput and the latency of accepted (2xx) requests per mode.
#
# Rounds alternate the runs (the order rotates each round); every run starts its proxy
# fresh. Everything listens on 127.0.0.1 only; a trap stops every process started here.
#
# Environment (defaults):
#   PARTS="cache overload"
#   ROUNDS=3
#   PROXY_CPU=0 LOAD_CPU=1
#   FICUS_BIN=target/release/ficus (relative to the repository root)
#   -- cache part
#   CACHE_PROXIES="nginx nginx-ofc ficus"   nginx-ofc: nginx + open_file_cache
#   DURATION=10   seconds per measured wrk run
#   WARMUP=2      seconds of warm-up per run (not measured)
#   CONNS=64 THREADS=1   wrk connections (keep-alive) and threads
#   -- overload part
#   OVL_MODES="base nolimit shed shedq"
#   OVL_DURATION=15 OVL_WARMUP=2   seconds measured / warm-up (at WARMUP_FACTOR x capacity)
#   SERVICE_MS=20 WORKERS=8        the upstream: capacity = WORKERS * 1000 / SERVICE_MS req/s
#   OVERLOAD=2    offered load of nolimit/shed/shedq, times the capacity
#   BASE_FACTOR=0.5 WARMUP_FACTOR=0.5   offered load of "base" and of every warm-up
#   MAX_IN_FLIGHT=$WORKERS  ficus's [upstream] max_in_flight in shed/shedq
#   QUEUE=8 QUEUE_TIMEOUT=50ms   queue and queue_timeout in shedq (shed: queue = 0)
#   CLIENT_TIMEOUT=2   the client gives up on a request this many seconds after it was due
#   MAX_CONNS=2000     client connections at most
#   ARRIVALS=uniform   or poisson
#   SKIP_ABANDONED=0   1: the upstream drops queued requests whose client has gone
#   -- common
#   SKIP_INSTALL=0  1: do not apt-get install missing wrk/nginx/curl/taskset/python3
#   NOISE_PCT=5     flag runs where other processes used more of the proxy CPU
#   QUIET_WAIT=0    before each run, wait up to this many seconds until the machine
#                   is below QUIET_PCT=10 % busy (for a shared machine)
#   LOCK_WAIT=900   seconds to wait for another benchmark (shared lock with proxy.sh)
#   OUT_DIR=bench/out/protect-<timestamp>
#   UPSTREAM_PORT=18280 NGINX_PORT=18281 FICUS_PORT=18282 SLOW_PORT=18283 ADMIN_PORT=18291
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
ROOT=$(dirname "$HERE")
CONF="$HERE/conf"

PARTS=${PARTS:-"cache overload"}
ROUNDS=${ROUNDS:-3}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
FICUS_BIN=${FICUS_BIN:-target/release/ficus}
CACHE_PROXIES=${CACHE_PROXIES:-"nginx nginx-ofc ficus"}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-64}
THREADS=${THREADS:-1}
OVL_MODES=${OVL_MODES:-"base nolimit shed shedq"}
OVL_DURATION=${OVL_DURATION:-15}
OVL_WARMUP=${OVL_WARMUP:-2}
SERVICE_MS=${SERVICE_MS:-20}
WORKERS=${WORKERS:-8}
OVERLOAD=${OVERLOAD:-2}
BASE_FACTOR=${BASE_FACTOR:-0.5}
WARMUP_FACTOR=${WARMUP_FACTOR:-0.5}
MAX_IN_FLIGHT=${MAX_IN_FLIGHT:-$WORKERS}
QUEUE=${QUEUE:-8}
QUEUE_TIMEOUT=${QUEUE_TIMEOUT:-50ms}
CLIENT_TIMEOUT=${CLIENT_TIMEOUT:-2}
MAX_CONNS=${MAX_CONNS:-2000}
ARRIVALS=${ARRIVALS:-uniform}
SKIP_ABANDONED=${SKIP_ABANDONED:-0}
SKIP_INSTALL=${SKIP_INSTALL:-0}
READY_TIMEOUT=${READY_TIMEOUT:-20}
NOISE_PCT=${NOISE_PCT:-5}
QUIET_WAIT=${QUIET_WAIT:-0}
QUIET_PCT=${QUIET_PCT:-10}
UPSTREAM_PORT=${UPSTREAM_PORT:-18280}
NGINX_PORT=${NGINX_PORT:-18281}
FICUS_PORT=${FICUS_PORT:-18282}
SLOW_PORT=${SLOW_PORT:-18283}
ADMIN_PORT=${ADMIN_PORT:-18291}
STAMP=$(date +%Y%m%d-%H%M%S)
OUT_DIR=${OUT_DIR:-"$HERE/out/protect-$STAMP"}


# ---------------------------------------------------------------- checks
case "$THREADS" in 1 | 2) ;; *) die "THREADS must be 1 or 2" ;; esac
for v in ROUNDS PROXY_CPU LOAD_CPU DURATION WARMUP CONNS OVL_DURATION OVL_WARMUP SERVICE_MS WORKERS \
    MAX_IN_FLIGHT QUEUE CLIENT_TIMEOUT MAX_CONNS NOISE_PCT QUIET_WAIT QUIET_PCT READY_TIMEOUT \
    UPSTREAM_PORT NGINX_PORT FICUS_PORT SLOW_PORT ADMIN_PORT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer (got '${!v}')"
done
for v in OVERLOAD BASE_FACTOR WARMUP_FACTOR; do
    [[ ${!v} =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "$v must be a number (got '${!v}')"
done
[ "$ROUNDS" -ge 1 ] || die "ROUNDS must be >= 1"
[ "$DURATION" -ge 1 ] && [ "$OVL_DURATION" -ge 1 ] || die "DURATION and OVL_DURATION must be >= 1"
[ "$SERVICE_MS" -ge 1 ] && [ "$WORKERS" -ge 1 ] && [ "$MAX_IN_FLIGHT" -ge 1 ] ||
    die "SERVICE_MS, WORKERS and MAX_IN_FLIGHT must be >= 1"
[ "$CLIENT_TIMEOUT" -ge 1 ] || die "CLIENT_TIMEOUT must be >= 1"
[[ $QUEUE_TIMEOUT =~ ^[0-9]+(ms|s)$ ]] || die "QUEUE_TIMEOUT must look like 50ms or 1s (got '$QUEUE_TIMEOUT')"
case "$ARRIVALS" in uniform | poisson) ;; *) die "ARRIVALS must be uniform or poisson" ;; esac
for part in $PARTS; do
    case "$part" in cache | overload) ;; *) die "unknown part '$part' in PARTS (cache, overload)" ;; esac
done
for p in $CACHE_PROXIES; do
    case "$p" in nginx | nginx-ofc | ficus) ;; *) die "unknown proxy '$p' in CACHE_PROXIES (nginx, nginx-ofc, ficus)" ;; esac
done
for m in $OVL_MODES; do
    case "$m" in base | nolimit | shed | shedq) ;; *) die "unknown mode '$m' in OVL_MODES (base, nolimit, shed, shedq)" ;; esac
done
[ "$(uname -s)" = Linux ] || die "Linux only (uses /proc and taskset)"
has_part() { [[ " $PARTS " == *" $1 "* ]]; }

# One benchmark at a time on this machine: the same lock as bench/proxy.sh and
# bench/shadow.sh (they use the same CPUs).
LOCK_FILE=${LOCK_FILE:-/tmp/ficus-bench-proxy.lock}
if command -v flock >/dev/null 2>&1; then
    exec 9>"$LOCK_FILE" || die "cannot open $LOCK_FILE"
    if ! flock -n 9; then
        say "another benchmark holds $LOCK_FILE; waiting (up to ${LOCK_WAIT:-900}s)"
        flock -w "${LOCK_WAIT:-900}" 9 || die "gave up waiting for $LOCK_FILE"
    fi
fi

# Only what this benchmark needs (bench/install.sh also installs HAProxy and Envoy).
install_missing() {
    local missing=() t
    command -v wrk >/dev/null 2>&1 || missing+=(wrk)
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
    command -v python3 >/dev/null 2>&1 || missing+=(python3)
    [ "${#missing[@]}" -gt 0 ] || return 0
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        warn "missing: ${missing[*]} (install them, or run as root on Debian)"
        return 1
    fi
    say "installing ${missing[*]} (apt-get)"
    apt-get update -qq || return 1
    for t in "${missing[@]}"; do
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$t" >/dev/null || warn "could not install $t"
    done
    # Debian's nginx package may start a system nginx; the benchmark runs its own.
    if [ -f /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid 2>/dev/null)" 2>/dev/null; then
        if command -v service >/dev/null 2>&1; then service nginx stop >/dev/null 2>&1 || true; fi
    fi
}
if [ "$SKIP_INSTALL" != 1 ]; then
    install_missing || die "install step failed"
fi
for t in wrk curl taskset getconf python3; do
    command -v "$t" >/dev/null 2>&1 || die "$t not found"
done
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "python3 >= 3.11 needed (asyncio.timeout_at)"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || die "nginx not found (needed for the upstream)"

NCPU=$(getconf _NPROCESSORS_ONLN)
if [ "$PROXY_CPU" -ge "$NCPU" ] || [ "$LOAD_CPU" -ge "$NCPU" ]; then
    die "need CPUs $PROXY_CPU and $LOAD_CPU; this machine has $NCPU"
fi
[ "$PROXY_CPU" -ne "$LOAD_CPU" ] || warn "PROXY_CPU equals LOAD_CPU: proxy and load share a core"
CLK_TCK=$(getconf CLK_TCK)

case "$FICUS_BIN" in
    /*) ;;
    *) if [ ! -e "$FICUS_BIN" ] && [ -e "$ROOT/$FICUS_BIN" ]; then FICUS_BIN="$ROOT/$FICUS_BIN"; fi ;;
esac
if [ ! -x "$FICUS_BIN" ]; then
    say "ficus: binary not built, run cargo build --release (looked for $FICUS_BIN)"
    has_part overload && die "the overload part needs ficus"
    CACHE_PROXIES=$(printf '%s\n' $CACHE_PROXIES | grep -vx ficus | tr '\n' ' ')
fi

# The overload part's rates: capacity = WORKERS / SERVICE_MS.
CAPACITY=$(awk -v w="$WORKERS" -v s="$SERVICE_MS" 'BEGIN { printf "%.1f", w * 1000 / s }')
RATE=$(awk -v c="$CAPACITY" -v f="$OVERLOAD" 'BEGIN { printf "%.1f", c * f }')
BASE_RATE=$(awk -v c="$CAPACITY" -v f="$BASE_FACTOR" 'BEGIN { printf "%.1f", c * f }')
WARMUP_RATE=$(awk -v c="$CAPACITY" -v f="$WARMUP_FACTOR" 'BEGIN { printf "%.1f", c * f }')

# ---------------------------------------------------------------- state
TMP=$(mktemp -d /tmp/ficus-bench-protect.XXXXXX)
# Run as root, nginx's workers run as nobody: they must reach the proxy_cache_path in here
# (nginx creates it for them).
chmod 711 "$TMP"
mkdir -p "$OUT_DIR" || die "cannot create $OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
STARTED=()


trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PAYLOAD=$(make_payload)
[ "${#PAYLOAD}" -eq 1024 ] || die "payload is ${#PAYLOAD} bytes, expected 1024"
printf '%s' "$PAYLOAD" >"$TMP/payload.json"

# render TEMPLATE DEST PORT [UPSTREAM_PORT] [EXTRA]: @EXTRA@ tokens (@OPEN_FILE_CACHE@,
# @LIMITS@) take EXTRA.
render() {
    local text up=${4:-$UPSTREAM_PORT} extra=${5:-}
    text=$(<"$1")
    text=${text//@DIR@/$(dirname "$2")}
    text=${text//@PORT@/$3}
    text=${text//@UPSTREAM_PORT@/$up}
    text=${text//@ADMIN_PORT@/$ADMIN_PORT}
    text=${text//@PAYLOAD@/$PAYLOAD}
    text=${text//@OPEN_FILE_CACHE@/$extra}
    text=${text//@LIMITS@/$extra}
    printf '%s\n' "$text" >"$2"
}



# wait_port_free PORT: a stopped process's port (up to 5 s).
wait_port_free() {
    local i
    for ((i = 0; i < 50; i++)); do
        port_busy "$1" || return 0
        sleep 0.1
    done
    return 1
}



# wait_quiet: with QUIET_WAIT > 0, waits (at most QUIET_WAIT seconds) until both CPUs
# together were below QUIET_PCT % busy over 2 s (the benchmark's own upstream is idle
# between runs).
wait_quiet() {
    [ "$QUIET_WAIT" -gt 0 ] || return 0
    local deadline=$((SECONDS + QUIET_WAIT)) pb0 pi0 lb0 li0 pb1 pi1 lb1 li1 pct
    while :; do
        read -r pb0 pi0 <<<"$(cpu_jiffies "$PROXY_CPU")"
        read -r lb0 li0 <<<"$(cpu_jiffies "$LOAD_CPU")"
        sleep 2
        read -r pb1 pi1 <<<"$(cpu_jiffies "$PROXY_CPU")"
        read -r lb1 li1 <<<"$(cpu_jiffies "$LOAD_CPU")"
        pct=$((100 * (pb1 - pb0 + lb1 - lb0) / (pb1 - pb0 + lb1 - lb0 + pi1 - pi0 + li1 - li0 + 1)))
        [ "$pct" -ge "$QUIET_PCT" ] || return 0
        if [ "$SECONDS" -ge "$deadline" ]; then
            warn "machine still ${pct}% busy after waiting ${QUIET_WAIT}s; running anyway"
            return 0
        fi
    done
}

# metrics FILE: ficus's /metrics into FILE (empty on failure).
metrics() { curl -fsS --max-time 3 "http://127.0.0.1:$ADMIN_PORT/metrics" >"$1" 2>/dev/null || : >"$1"; }
# metric_sum NAME FILE: the sum of every series of NAME (any labels).
metric_sum() {
    awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $NF } END { printf "%.0f", s }' "$2"
}

# Proportions of the run: "cpu_us_per_req proxy_cpu_pct busy_pct other_pct" from
# DTICKS REQUESTS DURATION_US PBUSY PIDLE
cpu_row() {
    awk -v dt="$1" -v req="$2" -v dur="$3" -v pb="$4" -v pi="$5" -v hz="$CLK_TCK" 'BEGIN {
        cpu_us = dt * 1e6 / hz
        per = (req > 0) ? cpu_us / req : 0
        util = 100 * cpu_us / dur
        pbusy = (pb + pi > 0) ? 100 * pb / (pb + pi) : 0
        other = pbusy - util
        if (other < 0) other = 0
        printf "%.2f %.1f %.0f %.0f", per, util, pbusy, other
    }'
}

# col FILE KEY COLUMN: the column's values of the rows whose 2nd field is KEY.
col() { awk -F'\t' -v p="$2" -v c="$3" 'NR > 1 && $2 == p { print $c }' "$1"; }
fmt_ms() { awk -v us="$1" 'BEGIN { if (us < 0) print "-"; else if (us >= 100000) printf "%.0f ms", us / 1000; else printf "%.3f ms", us / 1000 }'; }

# ---------------------------------------------------------------- environment record
{
    say "date: $(date -u '+%Y-%m-%dT%H:%M:%SZ')"
    say "host: $(uname -srm), $NCPU CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    say "settings: PARTS=\"$PARTS\" ROUNDS=$ROUNDS PROXY_CPU=$PROXY_CPU LOAD_CPU=$LOAD_CPU CLK_TCK=$CLK_TCK"
    say "cache: CACHE_PROXIES=\"$CACHE_PROXIES\" DURATION=${DURATION}s WARMUP=${WARMUP}s CONNS=$CONNS THREADS=$THREADS"
    say "overload: OVL_MODES=\"$OVL_MODES\" OVL_DURATION=${OVL_DURATION}s OVL_WARMUP=${OVL_WARMUP}s SERVICE_MS=$SERVICE_MS WORKERS=$WORKERS capacity=${CAPACITY}/s OVERLOAD=$OVERLOAD rate=${RATE}/s base=${BASE_RATE}/s warmup=${WARMUP_RATE}/s MAX_IN_FLIGHT=$MAX_IN_FLIGHT QUEUE=$QUEUE QUEUE_TIMEOUT=$QUEUE_TIMEOUT CLIENT_TIMEOUT=${CLIENT_TIMEOUT}s MAX_CONNS=$MAX_CONNS ARRIVALS=$ARRIVALS SKIP_ABANDONED=$SKIP_ABANDONED"
    say "noise: NOISE_PCT=$NOISE_PCT QUIET_WAIT=${QUIET_WAIT}s QUIET_PCT=$QUIET_PCT"
    say "wrk: $(wrk -v 2>&1 | head -n1)"
    say "nginx: $("$NGINX" -v 2>&1)"
    say "python3: $(python3 --version 2>&1)"
    [ -x "$FICUS_BIN" ] && say "ficus: $FICUS_BIN $("$FICUS_BIN" --version 2>&1 | head -n1)"
    say "repository HEAD (the binary may be built from another commit): $(git -C "$ROOT" log -1 --format='%h %s' 2>/dev/null)"
    [ -x "$FICUS_BIN" ] && say "ficus binary: $(stat -c '%y, %s bytes' "$FICUS_BIN"), sha256 $(sha256sum "$FICUS_BIN" | cut -c1-16)"
} >"$OUT_DIR/env.txt"
cat "$OUT_DIR/env.txt"

# ================================================================ part 1: cache hits
PROXY_PID=
# start_cache_proxy NAME: nginx, nginx-ofc or ficus on NGINX_PORT/FICUS_PORT -> PROXY_PID
start_cache_proxy() {
    local name=$1 port dir="$TMP/$1"
    rm -rf "$dir"
    mkdir -p "$dir"
    local logf="$dir/log"
    case "$name" in nginx*) port=$NGINX_PORT ;; *) port=$FICUS_PORT ;; esac
    if port_busy "$port"; then
        warn "$name: port $port is already in use"
        return 1
    fi
    case "$name" in
        nginx | nginx-ofc)
            local ofc=""
            [ "$name" = nginx-ofc ] && ofc="open_file_cache max=1000 inactive=60s;"
            render "$CONF/nginx-cache.conf" "$dir/nginx.conf" "$port" "$UPSTREAM_PORT" "$ofc"
            "$NGINX" -t -q -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" >"$logf" 2>&1 || {
                cat "$logf" >&2
                return 1
            }
            taskset -c "$PROXY_CPU" "$NGINX" -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" >>"$logf" 2>&1 &
            ;;
        ficus)
            port_busy "$ADMIN_PORT" && {
                warn "ficus admin port $ADMIN_PORT is already in use"
                return 1
            }
            render "$CONF/ficus-cache.toml" "$dir/ficus.toml" "$port"
            FICUS_WORKER_THREADS=1 RUST_LOG=${RUST_LOG:-warn} \
                taskset -c "$PROXY_CPU" "$FICUS_BIN" run -c "$dir/ficus.toml" >"$logf" 2>&1 &
            ;;
    esac
    PROXY_PID=$!
    STARTED+=("$PROXY_PID")
    wait_ready "$port" "$PROXY_PID" "$logf" || {
        stop_pid "$PROXY_PID"
        return 1
    }
}

run_cache_part() {
    local RESULTS="$OUT_DIR/cache.tsv" up_dir="$TMP/upstream" up_pid r i p port raw base
    printf 'round\tproxy\treq_per_s\tp50_us\tp99_us\tcpu_us_per_req\tproxy_cpu_pct\tcpu%s_busy_pct\tcpu%s_other_pct\trequests\terrors\thits\tmisses\thit_check\tcpu%s_busy_pct\n' \
        "$PROXY_CPU" "$PROXY_CPU" "$LOAD_CPU" >"$RESULTS"
    mkdir -p "$up_dir"
    port_busy "$UPSTREAM_PORT" && die "upstream port $UPSTREAM_PORT is already in use"
    render "$CONF/nginx-upstream.conf" "$up_dir/nginx.conf" "$UPSTREAM_PORT"
    "$NGINX" -t -q -p "$up_dir/" -e "$up_dir/error.log" -c "$up_dir/nginx.conf" >"$up_dir/log" 2>&1 ||
        {
            cat "$up_dir/log" >&2
            die "upstream nginx config test failed"
        }
    taskset -c "$LOAD_CPU" "$NGINX" -p "$up_dir/" -e "$up_dir/error.log" -c "$up_dir/nginx.conf" >>"$up_dir/log" 2>&1 &
    up_pid=$!
    STARTED+=("$up_pid")
    wait_ready "$UPSTREAM_PORT" "$up_pid" "$up_dir/log" || die "upstream did not start"
    say ""
    say "== cache part: upstream nginx pid $up_pid on 127.0.0.1:$UPSTREAM_PORT (CPU $LOAD_CPU), 1024-byte JSON, every request GET /"

    local -a RUN
    read -r -a RUN <<<"$CACHE_PROXIES"
    local n=${#RUN[@]}
    for ((r = 0; r < ROUNDS; r++)); do
        [ "$n" -gt 0 ] || break
        local order=()
        for ((i = 0; i < n; i++)); do order+=("${RUN[$(((i + r) % n))]}"); done
        say ""
        say "== cache round $((r + 1))/$ROUNDS: ${order[*]}"
        for p in "${order[@]}"; do
            case "$p" in nginx*) port=$NGINX_PORT ;; *) port=$FICUS_PORT ;; esac
            base="$OUT_DIR/cache-r$((r + 1))-$p"
            raw="$base.txt"
            wait_quiet
            if ! start_cache_proxy "$p"; then
                warn "$p: failed to start (cache round $((r + 1)))"
                cp "$TMP/$p/log" "$base.startup.log" 2>/dev/null
                continue
            fi
            # The readiness GET above was the one miss; everything from here on is a hit.
            [ "$WARMUP" -gt 0 ] && taskset -c "$LOAD_CPU" wrk -t"$THREADS" -c"$CONNS" -d"$WARMUP"s --latency \
                -s "$CONF/wrk-report.lua" "http://127.0.0.1:$port/" >"$base.warmup.txt" 2>&1
            local check="-" h0=0 m0=0 h1=0 m1=0
            if [ "$p" = ficus ]; then
                metrics "$base.metrics0.txt"
                h0=$(metric_sum ficus_cache_hits_total "$base.metrics0.txt")
                m0=$(metric_sum ficus_cache_misses_total "$base.metrics0.txt")
            else
                check=$(curl -fsS -D - -o /dev/null --max-time 2 "http://127.0.0.1:$port/" 2>/dev/null |
                    tr -d '\r' | awk -F': ' 'tolower($1) == "x-cache" { print $2 }')
                check=${check:-none}
            fi
            local t0 t1 b0 i0 b1 i1 lb0 li0 lb1 li1 wrk_rc alive
            read -r t0 _ <<<"$(tree_ticks "$PROXY_PID")"
            read -r b0 i0 <<<"$(cpu_jiffies "$PROXY_CPU")"
            read -r lb0 li0 <<<"$(cpu_jiffies "$LOAD_CPU")"
            taskset -c "$LOAD_CPU" wrk -t"$THREADS" -c"$CONNS" -d"$DURATION"s --latency \
                -s "$CONF/wrk-report.lua" "http://127.0.0.1:$port/" >"$raw" 2>&1
            wrk_rc=$?
            read -r t1 _ <<<"$(tree_ticks "$PROXY_PID")"
            read -r b1 i1 <<<"$(cpu_jiffies "$PROXY_CPU")"
            read -r lb1 li1 <<<"$(cpu_jiffies "$LOAD_CPU")"
            alive=1
            kill -0 "$PROXY_PID" 2>/dev/null || alive=0
            if [ "$p" = ficus ]; then
                metrics "$base.metrics.txt"
                h1=$(metric_sum ficus_cache_hits_total "$base.metrics.txt")
                m1=$(metric_sum ficus_cache_misses_total "$base.metrics.txt")
            fi
            cp "$TMP/$p/log" "$base.proxy.log" 2>/dev/null
            stop_pid "$PROXY_PID"
            wait_port_free "$port" || warn "$p: port $port still busy after stop"

            local line
            line=$(sed -n 's/^BENCH //p' "$raw")
            if [ "$wrk_rc" -ne 0 ] || [ -z "$line" ] || [ "$alive" -eq 0 ]; then
                warn "$p: run failed (wrk rc=$wrk_rc, proxy alive=$alive); see $raw"
                continue
            fi
            local -A W=()
            local kv errors per util pbusy other rps hits misses
            for kv in $line; do W[${kv%%=*}]=${kv#*=}; done
            errors=$((W[err_connect] + W[err_read] + W[err_write] + W[err_status] + W[err_timeout]))
            read -r per util pbusy other <<<"$(cpu_row "$((t1 - t0))" "${W[requests]}" "${W[duration_us]}" "$((b1 - b0))" "$((i1 - i0))")"
            rps=$(awk -v q="${W[requests]}" -v d="${W[duration_us]}" 'BEGIN { printf "%.0f", q / (d / 1e6) }')
            local lbusy
            lbusy=$(awk -v b="$((lb1 - lb0))" -v i="$((li1 - li0))" 'BEGIN { printf "%.0f", (b + i > 0) ? 100 * b / (b + i) : 0 }')
            hits="-"
            misses="-"
            if [ "$p" = ficus ]; then
                hits=$((h1 - h0))
                misses=$((m1 - m0))
                check=$(awk -v h="$hits" -v q="${W[requests]}" 'BEGIN { printf "%.2f%% hits", (q > 0) ? 100 * h / q : 0 }')
            fi
            printf '%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$((r + 1))" "$p" "$rps" "${W[p50_us]}" "${W[p99_us]}" \
                "$per" "$util" "$pbusy" "$other" "${W[requests]}" "$errors" "$hits" "$misses" "$check" "$lbusy" >>"$RESULTS"
            printf '%-9s %7s req/s  p50 %6sus  p99 %6sus  CPU %6s us/req  (proxy %s%% of a core; cpu%s %s%% busy, other %s%%; cpu%s %s%% busy; errors %s; %s)\n' \
                "$p" "$rps" "${W[p50_us]}" "${W[p99_us]}" "$per" "$util" "$PROXY_CPU" "$pbusy" "$other" "$LOAD_CPU" "$lbusy" "$errors" \
                "$([ "$p" = ficus ] && echo "cache hits $hits, misses $misses: $check" || echo "X-Cache: $check")"
            [ "$other" -le "$NOISE_PCT" ] ||
                warn "$p: other processes used ${other}% of CPU $PROXY_CPU during cache round $((r + 1)); this run is noisy"
            [ "$errors" -eq 0 ] || warn "$p: $errors errors/non-2xx responses (see $raw)"
            if [ "$p" = ficus ]; then
                [ "$misses" = 0 ] || warn "$p: $misses cache misses during the measured run"
            else
                [ "$check" = HIT ] || warn "$p: X-Cache is '$check', not HIT"
            fi
        done
    done
    stop_pid "$up_pid"

    {
        say "## Cache hits: nginx proxy_cache vs ficus [route.cache] ($(date -u '+%Y-%m-%d %H:%M UTC'))"
        say ""
        say "wrk $THREADS thread(s), $CONNS keep-alive connections, ${DURATION}s per run (+${WARMUP}s warm-up), $ROUNDS round(s), every request GET / (one miss at start-up, then hits)."
        say "Proxy pinned to CPU $PROXY_CPU (1 nginx worker / FICUS_WORKER_THREADS=1); wrk and the upstream nginx pinned to CPU $LOAD_CPU. Medians over rounds."
        say ""
        say "| proxy | req/s | p50 | p99 | CPU us/req | hits |"
        say "|---|---:|---:|---:|---:|---|"
        for p in $CACHE_PROXIES; do
            local cnt
            cnt=$(col "$RESULTS" "$p" 3 | wc -l)
            if [ "$cnt" -eq 0 ]; then
                say "| $p | failed | - | - | - | - |"
                continue
            fi
            local hc
            hc=$(col "$RESULTS" "$p" 14 | sort -u | paste -sd/ -)
            say "| $p$([ "$cnt" -lt "$ROUNDS" ] && echo " ($cnt/$ROUNDS runs ok)") | $(printf '%.0f' "$(col "$RESULTS" "$p" 3 | median)") | $(fmt_ms "$(col "$RESULTS" "$p" 4 | median)") | $(fmt_ms "$(col "$RESULTS" "$p" 5 | median)") | $(printf '%.2f' "$(col "$RESULTS" "$p" 6 | median)") | ${hc} |"
        done
        say ""
        say "nginx: X-Cache (\$upstream_cache_status) of one GET after the warm-up. ficus: share of the measured requests counted in ficus_cache_hits_total. nginx-ofc: + open_file_cache."
        say ""
        say "### Raw (every run)"
        say ""
        say "| round | proxy | req/s | p50 | p99 | CPU us/req | proxy CPU % | cpu$PROXY_CPU busy % | cpu$PROXY_CPU other % | cpu$LOAD_CPU busy % | requests | errors | hits | misses |"
        say "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        awk -F'\t' 'NR > 1 { printf "| %s | %s | %s | %.3f ms | %.3f ms | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4 / 1000, $5 / 1000, $6, $7, $8, $9, $15, $10, $11, $12, $13 }' "$RESULTS"
        local noisy
        noisy=$(awk -F'\t' -v lim="$NOISE_PCT" 'NR > 1 && $9 > lim { printf "%sround %s %s (%s%%)", sep, $1, $2, $9; sep = ", " }' "$RESULTS")
        [ -z "$noisy" ] || {
            say ""
            say "Noisy runs (other processes used more than ${NOISE_PCT}% of CPU $PROXY_CPU): $noisy."
        }
    } >"$OUT_DIR/cache.md"
}

# ================================================================ part 2: overload
# limits MODE: the [upstream.legacy] lines of the mode.
limits() {
    case "$1" in
        base | nolimit) echo "# no limit" ;;
        shed) printf 'max_in_flight = %s\nqueue = 0\n' "$MAX_IN_FLIGHT" ;;
        shedq) printf 'max_in_flight = %s\nqueue = %s\nqueue_timeout = "%s"\n' "$MAX_IN_FLIGHT" "$QUEUE" "$QUEUE_TIMEOUT" ;;
    esac
}

run_overload_part() {
    local RESULTS="$OUT_DIR/overload.tsv" r i m
    printf 'round\tmode\toffered_rps\tsent_rps\tok_rps\ts503_rps\ttimeout_rps\tother\terror\tok_p50_us\tok_p99_us\tok_max_us\ts503_p50_us\ts503_p99_us\tlag_p99_us\tconns_peak\tshed\tup_served\tup_abandoned\tup_peak_waiting\tup_peak_working\tficus_cpu_pct\tficus_cpu_us_per_req\tcpu%s_other_pct\tresent\n' \
        "$PROXY_CPU" >"$RESULTS"
    local -a MODES
    read -r -a MODES <<<"$OVL_MODES"
    local n=${#MODES[@]}
    local skip=()
    [ "$SKIP_ABANDONED" = 1 ] && skip=(--skip-abandoned)
    say ""
    say "== overload part: upstream capacity $CAPACITY req/s ($WORKERS workers x ${SERVICE_MS} ms), offered ${RATE} req/s (base: ${BASE_RATE}), open loop, ${OVL_DURATION}s per run"
    for ((r = 0; r < ROUNDS; r++)); do
        [ "$n" -gt 0 ] || break
        local order=()
        for ((i = 0; i < n; i++)); do order+=("${MODES[$(((i + r) % n))]}"); done
        say ""
        say "== overload round $((r + 1))/$ROUNDS: ${order[*]}"
        for m in "${order[@]}"; do
            local dir="$TMP/ovl-$m" base="$OUT_DIR/overload-r$((r + 1))-$m" up_pid fpid rate
            rm -rf "$dir"
            mkdir -p "$dir"
            rate=$RATE
            [ "$m" = base ] && rate=$BASE_RATE
            wait_quiet
            if port_busy "$SLOW_PORT" || port_busy "$FICUS_PORT" || port_busy "$ADMIN_PORT"; then
                warn "$m: port $SLOW_PORT, $FICUS_PORT or $ADMIN_PORT is in use; skipped"
                continue
            fi
            # A fresh upstream per run: a run without shedding leaves a backlog in it.
            taskset -c "$LOAD_CPU" python3 -u "$CONF/limited-upstream.py" --port "$SLOW_PORT" --delay-ms "$SERVICE_MS" \
                --workers "$WORKERS" --body-file "$TMP/payload.json" "${skip[@]}" >"$dir/upstream.log" 2>&1 &
            up_pid=$!
            STARTED+=("$up_pid")
            wait_ready "$SLOW_PORT" "$up_pid" "$dir/upstream.log" || {
                warn "$m: upstream did not start"
                stop_pid "$up_pid"
                continue
            }
            render "$CONF/ficus-overload.toml" "$dir/ficus.toml" "$FICUS_PORT" "$SLOW_PORT" "$(limits "$m")"
            FICUS_WORKER_THREADS=1 RUST_LOG=${RUST_LOG:-warn} \
                taskset -c "$PROXY_CPU" "$FICUS_BIN" run -c "$dir/ficus.toml" >"$dir/ficus.log" 2>&1 &
            fpid=$!
            STARTED+=("$fpid")
            if ! wait_ready "$FICUS_PORT" "$fpid" "$dir/ficus.log"; then
                warn "$m: ficus did not start"
                cp "$dir/ficus.log" "$base.startup.log" 2>/dev/null
                stop_pid "$fpid"
                stop_pid "$up_pid"
                continue
            fi
            # Warm-up below capacity: connections and pools open, no backlog.
            if [ "$OVL_WARMUP" -gt 0 ]; then
                taskset -c "$LOAD_CPU" python3 "$CONF/openloop.py" --port "$FICUS_PORT" --rate "$WARMUP_RATE" \
                    --duration "$OVL_WARMUP" --timeout "$CLIENT_TIMEOUT" --max-conns "$MAX_CONNS" \
                    --arrivals "$ARRIVALS" >"$base.warmup.txt" 2>&1
            fi
            kill -USR1 "$up_pid" 2>/dev/null # reset its counters
            metrics "$base.metrics0.txt"
            local t0 t1 b0 i0 b1 i1 rc alive s0 s1
            s0=$(metric_sum ficus_upstream_shed_total "$base.metrics0.txt")
            read -r t0 _ <<<"$(tree_ticks "$fpid")"
            read -r b0 i0 <<<"$(cpu_jiffies "$PROXY_CPU")"
            local started_ns=$EPOCHREALTIME
            taskset -c "$LOAD_CPU" python3 "$CONF/openloop.py" --port "$FICUS_PORT" --rate "$rate" \
                --duration "$OVL_DURATION" --timeout "$CLIENT_TIMEOUT" --max-conns "$MAX_CONNS" \
                --arrivals "$ARRIVALS" --out "$base.requests.tsv" >"$base.txt" 2>&1
            rc=$?
            local wall_us
            wall_us=$(awk -v a="$started_ns" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", (b - a) * 1e6 }')
            read -r t1 _ <<<"$(tree_ticks "$fpid")"
            read -r b1 i1 <<<"$(cpu_jiffies "$PROXY_CPU")"
            alive=1
            kill -0 "$fpid" 2>/dev/null || alive=0
            metrics "$base.metrics.txt"
            s1=$(metric_sum ficus_upstream_shed_total "$base.metrics.txt")
            kill -USR1 "$up_pid" 2>/dev/null
            sleep 0.2
            cp "$dir/ficus.log" "$base.ficus.log" 2>/dev/null
            stop_pid "$fpid"
            stop_pid "$up_pid"
            cp "$dir/upstream.log" "$base.upstream.log" 2>/dev/null
            wait_port_free "$FICUS_PORT" || warn "$m: port $FICUS_PORT still busy after stop"
            wait_port_free "$SLOW_PORT" || warn "$m: port $SLOW_PORT still busy after stop"

            local line
            line=$(sed -n 's/^LOAD //p' "$base.txt")
            if [ "$rc" -ne 0 ] || [ -z "$line" ] || [ "$alive" -eq 0 ]; then
                warn "$m: run failed (client rc=$rc, ficus alive=$alive); see $base.txt"
                continue
            fi
            local -A L=() U=()
            local kv
            for kv in $line; do L[${kv%%=*}]=${kv#*=}; done
            local ustats
            ustats=$(grep '^STATS ' "$base.upstream.log" | tail -n 1)
            for kv in ${ustats#STATS }; do U[${kv%%=*}]=${kv#*=}; done
            # ficus's CPU over the whole client run (the measured phase plus the wait for the
            # last answers), per request sent (answered or not).
            local per util pbusy other tps
            read -r per util pbusy other <<<"$(cpu_row "$((t1 - t0))" "${L[sent]}" "$wall_us" "$((b1 - b0))" "$((i1 - i0))")"
            tps=$(awk -v t="${L[timeout]}" -v d="${L[duration_s]}" 'BEGIN { printf "%.1f", t / d }')
            printf '%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
                "$((r + 1))" "$m" "${L[offered_rps]}" "${L[sent_rps]}" "${L[ok_rps]}" "${L[s503_rps]}" "$tps" "${L[other]}" "${L[error]}" \
                "${L[ok_p50_us]}" "${L[ok_p99_us]}" "${L[ok_max_us]}" "${L[s503_p50_us]}" "${L[s503_p99_us]}" "${L[lag_p99_us]}" "${L[conns_peak]}" \
                "$((s1 - s0))" "${U[served]:--}" "${U[abandoned]:--}" "${U[peak_waiting]:--}" "${U[peak_working]:--}" "$util" "$per" "$other" "${L[resent]:-0}" >>"$RESULTS"
            printf '%-8s offered %6s/s  2xx %6s/s  503 %6s/s  timeouts %5s/s  2xx p50 %8s p99 %8s  503 p99 %8s  (upstream peak waiting %s, working %s; ficus %s%% CPU; other %s%%)\n' \
                "$m" "${L[offered_rps]}" "${L[ok_rps]}" "${L[s503_rps]}" "$tps" "$(fmt_ms "${L[ok_p50_us]}")" "$(fmt_ms "${L[ok_p99_us]}")" \
                "$(fmt_ms "${L[s503_p99_us]}")" "${U[peak_waiting]:--}" "${U[peak_working]:--}" "$util" "$other"
            [ "$other" -le "$NOISE_PCT" ] ||
                warn "$m: other processes used ${other}% of CPU $PROXY_CPU during overload round $((r + 1)); this run is noisy"
            [ "${L[error]}" -eq 0 ] && [ "${L[other]}" -eq 0 ] ||
                warn "$m: ${L[error]} client errors and ${L[other]} answers other than 2xx/503 (see $base.requests.tsv)"
        done
    done

    {
        say "## Overload: ficus with and without shedding at ${OVERLOAD}x capacity ($(date -u '+%Y-%m-%d %H:%M UTC'))"
        say ""
        say "Upstream: $WORKERS requests at once, ${SERVICE_MS} ms each (capacity $CAPACITY req/s), FIFO queue beyond$([ "$SKIP_ABANDONED" = 1 ] && echo ", drops queued requests whose client left" || echo ", works on queued requests whose client left")."
        say "Open-loop client ($ARRIVALS arrivals, latency from the moment a request was due, gives up after ${CLIENT_TIMEOUT}s), ${OVL_DURATION}s per run after ${OVL_WARMUP}s at ${WARMUP_RATE}/s; ficus pinned to CPU $PROXY_CPU (FICUS_WORKER_THREADS=1), client and upstream to CPU $LOAD_CPU. $ROUNDS round(s), medians over rounds."
        say "Modes: base = no limit at ${BASE_RATE}/s (reference); nolimit = no limit; shed = max_in_flight $MAX_IN_FLIGHT, queue 0; shedq = max_in_flight $MAX_IN_FLIGHT, queue $QUEUE, queue_timeout $QUEUE_TIMEOUT."
        say ""
        say "| mode | offered/s | goodput (2xx/s) | 503/s | timeouts/s | 2xx p50 | 2xx p99 | 503 p50 | 503 p99 | upstream peak queue | ficus CPU us/req |"
        say "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        for m in $OVL_MODES; do
            local cnt
            cnt=$(col "$RESULTS" "$m" 3 | wc -l)
            if [ "$cnt" -eq 0 ]; then
                say "| $m | failed | - | - | - | - | - | - | - | - | - |"
                continue
            fi
            say "| $m$([ "$cnt" -lt "$ROUNDS" ] && echo " ($cnt/$ROUNDS runs ok)") | $(printf '%.0f' "$(col "$RESULTS" "$m" 3 | median)") | $(printf '%.0f' "$(col "$RESULTS" "$m" 5 | median)") | $(printf '%.0f' "$(col "$RESULTS" "$m" 6 | median)") | $(printf '%.1f' "$(col "$RESULTS" "$m" 7 | median)") | $(fmt_ms "$(col "$RESULTS" "$m" 10 | median)") | $(fmt_ms "$(col "$RESULTS" "$m" 11 | median)") | $(fmt_ms "$(col "$RESULTS" "$m" 13 | median)") | $(fmt_ms "$(col "$RESULTS" "$m" 14 | median)") | $(printf '%.0f' "$(col "$RESULTS" "$m" 20 | median)") | $(printf '%.1f' "$(col "$RESULTS" "$m" 23 | median)") |"
        done
        say ""
        say "### Raw (every run)"
        say ""
        say "| round | mode | offered/s | sent/s | 2xx/s | 503/s | timeouts/s | 2xx p50 | 2xx p99 | 2xx max | 503 p99 | client lag p99 | client conns | resent | ficus shed | upstream served | abandoned | peak queue | peak working | ficus CPU % | cpu$PROXY_CPU other % |"
        say "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        awk -F'\t' 'function ms(us) { return us < 0 ? "-" : (us >= 100000 ? sprintf("%.0f ms", us / 1000) : sprintf("%.3f ms", us / 1000)) }
            NR > 1 { printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
                $1, $2, $3, $4, $5, $6, $7, ms($10), ms($11), ms($12), ms($14), ms($15), $16, $25, $17, $18, $19, $20, $21, $22, $24 }' "$RESULTS"
        local noisy
        noisy=$(awk -F'\t' -v lim="$NOISE_PCT" 'NR > 1 && $24 > lim { printf "%sround %s %s (%s%%)", sep, $1, $2, $24; sep = ", " }' "$RESULTS")
        [ -z "$noisy" ] || {
            say ""
            say "Noisy runs (other processes used more than ${NOISE_PCT}% of CPU $PROXY_CPU): $noisy."
        }
        say ""
        say "Per-second timelines: overload-rN-MODE.requests.tsv.timeline."
    } >"$OUT_DIR/overload.md"
}

# ---------------------------------------------------------------- run
has_part cache && run_cache_part
has_part overload && run_overload_part

SUMMARY="$OUT_DIR/summary.md"
{
    [ -f "$OUT_DIR/cache.md" ] && cat "$OUT_DIR/cache.md" && say ""
    [ -f "$OUT_DIR/overload.md" ] && cat "$OUT_DIR/overload.md"
} >"$SUMMARY"
say ""
cat "$SUMMARY"
say ""
say "raw output: $OUT_DIR"
