#!/usr/bin/env bash
# Mirroring benchmark: what 100 % shadow traffic to a slow modern service costs
# the client. ficus proxies to a fast legacy upstream (the nginx of
# bench/proxy.sh, fixed 1 KB JSON) and, in the "mirror" runs, copies every
# request to a modern upstream that answers after DELAY_MS (200 ms) and
# compares the two responses. Each round runs "nomirror" (route on stage
# legacy) and "mirror" (the same route on stage shadow, sample 100 %, no
# noise sample), alternately, with a fresh ficus for every run. wrk sends a
# fixed, moderate rate (CONNS connections, each pausing DELAY_BETWEEN_MS
# between requests) so that the mirror has to carry every copy. The target
# (issue): client p99 with mirroring at most P99_LIMIT (1.10) x without.
# ficus is pinned to PROXY_CPUS; wrk, the legacy nginx and the modern server
# to LOAD_CPU; everything on 127.0.0.1. See bench/README.md.
#
# Environment (defaults):
#   DURATION=15          seconds per measured wrk run
#   WARMUP=3             seconds of warm-up per run (not measured)
#   ROUNDS=3             rounds; every round runs both modes once, the order alternates
#   CONNS=10             wrk connections (keep-alive)
#   DELAY_BETWEEN_MS=40  pause of each connection between a response and its next
#                        request: rate ~ CONNS x 1000 / (DELAY_BETWEEN_MS + latency)
#   THREADS=1            wrk threads (1 or 2)
#   DELAY_MS=200         the modern service's answer time
#   MODERN_TIMEOUT=2s    ficus's request_timeout for modern (must exceed DELAY_MS)
#   SHADOW_MAX_IN_FLIGHT=64 SHADOW_QUEUE=1024   ficus [shadow] bounds (its defaults)
#   MODES="nomirror mirror"
#   PROXY_CPUS=0         taskset CPU list for ficus (e.g. 0,1 to give it both CPUs)
#   LOAD_CPU=1           CPU of wrk, the legacy nginx and the modern server
#   WORKER_THREADS=1     FICUS_WORKER_THREADS
#   P99_LIMIT=1.10       PASS when median mirror p99 <= P99_LIMIT x median nomirror p99
#   FICUS_BIN=target/release/ficus (relative to the repository root)
#   BENCH_COMPARE=0      1: also run ficus-compare's criterion bench at the end
#   CARGO_TARGET_DIR=    for BENCH_COMPARE (default: the target dir FICUS_BIN is in)
#   SKIP_INSTALL=0       1: do not apt-get install missing wrk/nginx/curl/taskset/python3
#   NOISE_PCT=5          flag runs where other processes used more of ficus's CPUs
#   QUIET_WAIT=0         before each run, wait up to this many seconds until the
#                        machine is below QUIET_PCT=10 % busy (for a shared machine)
#   LOCK_WAIT=900        seconds to wait for another benchmark (shared lock with proxy.sh)
#   OUT_DIR=bench/out/shadow-<timestamp>
#   UPSTREAM_PORT=18180 MODERN_PORT=18181 FICUS_PORT=18184 ADMIN_PORT=18191
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
ROOT=$(dirname "$HERE")
CONF="$HERE/conf"

DURATION=${DURATION:-15}
WARMUP=${WARMUP:-3}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-10}
DELAY_BETWEEN_MS=${DELAY_BETWEEN_MS:-40}
THREADS=${THREADS:-1}
DELAY_MS=${DELAY_MS:-200}
MODERN_TIMEOUT=${MODERN_TIMEOUT:-2s}
SHADOW_MAX_IN_FLIGHT=${SHADOW_MAX_IN_FLIGHT:-64}
SHADOW_QUEUE=${SHADOW_QUEUE:-1024}
MODES=${MODES:-"nomirror mirror"}
PROXY_CPUS=${PROXY_CPUS:-0}
LOAD_CPU=${LOAD_CPU:-1}
WORKER_THREADS=${WORKER_THREADS:-1}
P99_LIMIT=${P99_LIMIT:-1.10}
UPSTREAM_PORT=${UPSTREAM_PORT:-18180}
MODERN_PORT=${MODERN_PORT:-18181}
FICUS_PORT=${FICUS_PORT:-18184}
ADMIN_PORT=${ADMIN_PORT:-18191}
FICUS_BIN=${FICUS_BIN:-target/release/ficus}
BENCH_COMPARE=${BENCH_COMPARE:-0}
COMPARE_TIMEOUT=${COMPARE_TIMEOUT:-1800}
SKIP_INSTALL=${SKIP_INSTALL:-0}
READY_TIMEOUT=${READY_TIMEOUT:-20}
QUIESCE_TIMEOUT=${QUIESCE_TIMEOUT:-10}
NOISE_PCT=${NOISE_PCT:-5}
QUIET_WAIT=${QUIET_WAIT:-0}
QUIET_PCT=${QUIET_PCT:-10}
STAMP=$(date +%Y%m%d-%H%M%S)
OUT_DIR=${OUT_DIR:-"$HERE/out/shadow-$STAMP"}


# ---------------------------------------------------------------- checks
case "$THREADS" in 1 | 2) ;; *) die "THREADS must be 1 or 2" ;; esac
for v in DURATION WARMUP ROUNDS CONNS DELAY_BETWEEN_MS DELAY_MS SHADOW_MAX_IN_FLIGHT SHADOW_QUEUE \
    LOAD_CPU WORKER_THREADS NOISE_PCT QUIET_WAIT QUIET_PCT READY_TIMEOUT QUIESCE_TIMEOUT COMPARE_TIMEOUT \
    UPSTREAM_PORT MODERN_PORT FICUS_PORT ADMIN_PORT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer (got '${!v}')"
done
[ "$ROUNDS" -ge 1 ] || die "ROUNDS must be >= 1"
[ "$DURATION" -ge 1 ] || die "DURATION must be >= 1"
[ "$CONNS" -ge "$THREADS" ] || die "CONNS must be >= THREADS"
[ "$WORKER_THREADS" -ge 1 ] || die "WORKER_THREADS must be >= 1"
[[ $PROXY_CPUS =~ ^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$ ]] || die "PROXY_CPUS must be a taskset CPU list like 0 or 0,1 (got '$PROXY_CPUS')"
[[ $MODERN_TIMEOUT =~ ^[0-9]+(ms|s|m)$ ]] || die "MODERN_TIMEOUT must be a ficus duration like 2s or 1500ms"
[[ $P99_LIMIT =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "P99_LIMIT must be a number"
for m in $MODES; do
    case "$m" in nomirror | mirror) ;; *) die "unknown mode '$m' in MODES (nomirror, mirror)" ;; esac
done
[ "$(uname -s)" = Linux ] || die "Linux only (uses /proc and taskset)"
timeout_ms=$(awk -v t="$MODERN_TIMEOUT" 'BEGIN { n = t + 0; if (t ~ /ms$/) print n; else if (t ~ /m$/) print n * 60000; else print n * 1000 }')
[ "$timeout_ms" -gt "$DELAY_MS" ] || die "MODERN_TIMEOUT ($MODERN_TIMEOUT) must exceed DELAY_MS (${DELAY_MS} ms), or every copy times out"

# One benchmark at a time on this machine: the same lock as bench/proxy.sh
# (both use the same CPUs).
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
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || die "nginx not found (needed for the legacy upstream)"

NCPU=$(getconf _NPROCESSORS_ONLN)
# expand_cpus "0,2-3" -> "0 2 3"
expand_cpus() {
    local part a b out=()
    IFS=, read -r -a parts <<<"$1"
    for part in "${parts[@]}"; do
        a=${part%-*}
        b=${part#*-}
        for ((c = a; c <= b; c++)); do out+=("$c"); done
    done
    echo "${out[*]}"
}
read -r -a PCPUS <<<"$(expand_cpus "$PROXY_CPUS")"
for c in "${PCPUS[@]}" "$LOAD_CPU"; do
    [ "$c" -lt "$NCPU" ] || die "CPU $c does not exist; this machine has $NCPU"
done
SHARED_LOAD=0
for c in "${PCPUS[@]}"; do [ "$c" -ne "$LOAD_CPU" ] || SHARED_LOAD=1; done
[ "$SHARED_LOAD" -eq 0 ] ||
    warn "PROXY_CPUS ($PROXY_CPUS) includes LOAD_CPU ($LOAD_CPU): ficus shares a CPU with wrk and the upstreams, and 'other %' includes them"
CLK_TCK=$(getconf CLK_TCK)

case "$FICUS_BIN" in
    /*) ;;
    *) if [ ! -e "$FICUS_BIN" ] && [ -e "$ROOT/$FICUS_BIN" ]; then FICUS_BIN="$ROOT/$FICUS_BIN"; else FICUS_BIN="$PWD/$FICUS_BIN"; fi ;;
esac
[ -x "$FICUS_BIN" ] || die "ficus: binary not built, run cargo build --release (looked for $FICUS_BIN)"

# ---------------------------------------------------------------- state and teardown
TMP=$(mktemp -d /tmp/ficus-bench-shadow.XXXXXX)
mkdir -p "$OUT_DIR" || die "cannot create $OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
STARTED=()


trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PAYLOAD=$(make_payload)
[ "${#PAYLOAD}" -eq 1024 ] || die "payload is ${#PAYLOAD} bytes, expected 1024"
printf '%s' "$PAYLOAD" >"$TMP/payload.json"

# render TEMPLATE DEST PORT [STAGE]
render() {
    local text
    text=$(<"$1")
    text=${text//@DIR@/$(dirname "$2")}
    text=${text//@PORT@/$3}
    text=${text//@STAGE@/${4:-legacy}}
    text=${text//@UPSTREAM_PORT@/$UPSTREAM_PORT}
    text=${text//@MODERN_PORT@/$MODERN_PORT}
    text=${text//@ADMIN_PORT@/$ADMIN_PORT}
    text=${text//@MODERN_TIMEOUT@/$MODERN_TIMEOUT}
    text=${text//@SHADOW_QUEUE@/$SHADOW_QUEUE}
    text=${text//@SHADOW_MAX_IN_FLIGHT@/$SHADOW_MAX_IN_FLIGHT}
    text=${text//@PAYLOAD@/$PAYLOAD}
    printf '%s\n' "$text" >"$2"
}





# The mirror's counters from ficus's /metrics, summed over routes:
# "mirrored compared failed differing queue-full too-large incomplete closed"
shadow_counters() {
    curl -fsS --max-time 2 "http://127.0.0.1:$ADMIN_PORT/metrics" 2>/dev/null | awk '
        function reason(s) { sub(/.*reason="/, "", s); sub(/".*/, "", s); return s }
        $1 ~ /^ficus_shadow_mirrored_total/ { m += $2 }
        $1 ~ /^ficus_shadow_compared_total/ { c += $2 }
        $1 ~ /^ficus_shadow_failed_total/ { f += $2 }
        $1 ~ /^ficus_shadow_differing_total/ { d += $2 }
        $1 ~ /^ficus_shadow_dropped_total/ { dr[reason($1)] += $2 }
        END { printf "%d %d %d %d %d %d %d %d\n", m, c, f, d, dr["queue-full"], dr["too-large"], dr["incomplete"], dr["closed"] }'
}

# Waits (up to QUIESCE_TIMEOUT) until every mirrored copy has been compared,
# then prints the counters. Returns 1 when copies are still in flight.
quiesce() {
    local deadline=$((SECONDS + QUIESCE_TIMEOUT)) c m cmp large
    while :; do
        c=$(shadow_counters) || c="0 0 0 0 0 0 0 0"
        read -r m cmp _ _ _ large _ _ <<<"$c"
        if [ $((cmp + large)) -ge "$m" ]; then
            echo "$c"
            return 0
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "$c"
            return 1
        fi
        sleep 0.1
    done
}

# The modern server's counters since the previous call (SIGUSR1 prints and resets them):
# "served shadow peak_in_flight errors connections"
modern_stats() {
    local logf="$TMP/modern/log" before i line
    before=$(grep -c '^STATS ' "$logf")
    kill -USR1 "$MODERN_PID" 2>/dev/null || {
        echo "0 0 0 0 0"
        return 1
    }
    for ((i = 0; i < 50; i++)); do
        [ "$(grep -c '^STATS ' "$logf")" -gt "$before" ] && break
        sleep 0.05
    done
    line=$(grep '^STATS ' "$logf" | tail -n 1)
    awk '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
           printf "%d %d %d %d %d\n", v["served"], v["shadow"], v["peak_in_flight"], v["errors"], v["connections"] }' <<<"$line"
}

# start_ficus MODE -> sets FICUS_PID; logs into $TMP/MODE/log
FICUS_PID=
start_ficus() {
    local mode=$1 dir="$TMP/$1" stage
    rm -rf "$dir"
    mkdir -p "$dir"
    local logf="$dir/log"
    case "$mode" in
        nomirror) stage=legacy ;;
        mirror) stage=shadow ;;
    esac
    for port in "$FICUS_PORT" "$ADMIN_PORT"; do
        if port_busy "$port"; then
            warn "ficus: port $port is already in use"
            return 1
        fi
    done
    render "$CONF/ficus-shadow.toml" "$dir/ficus.toml" "$FICUS_PORT" "$stage"
    "$FICUS_BIN" validate -c "$dir/ficus.toml" >"$logf" 2>&1 || {
        cat "$logf" >&2
        return 1
    }
    FICUS_WORKER_THREADS=$WORKER_THREADS RUST_LOG=${RUST_LOG:-warn} \
        taskset -c "$PROXY_CPUS" "$FICUS_BIN" run -c "$dir/ficus.toml" >>"$logf" 2>&1 &
    FICUS_PID=$!
    STARTED+=("$FICUS_PID")
    wait_ready "$FICUS_PORT" "$FICUS_PID" "$logf" || {
        stop_pid "$FICUS_PID"
        return 1
    }
}

# The wrk script: bench/conf/wrk-report.lua's BENCH line, a pause of
# DELAY_BETWEEN_MS before each request (wrk's latency starts when the request
# is written, so the pause is not in it), and a BENCHX line with more figures.
PACED="$TMP/wrk-paced.lua"
cat >"$PACED" <<EOF
dofile("$CONF/wrk-report.lua")
local report = done
local pause = $DELAY_BETWEEN_MS
delay = function() return pause end
done = function(summary, latency, requests)
  report(summary, latency, requests)
  io.write(string.format("BENCHX p90_us=%d p999_us=%d mean_us=%d stdev_us=%d\n",
    latency:percentile(90), latency:percentile(99.9), latency.mean, latency.stdev))
end
EOF

# run_wrk SECONDS OUTFILE
run_wrk() {
    taskset -c "$LOAD_CPU" wrk -t"$THREADS" -c"$CONNS" -d"$1"s --latency --timeout 5s \
        -s "$PACED" "http://127.0.0.1:$FICUS_PORT/" >"$2" 2>&1
}

now_us() { echo "${EPOCHREALTIME/./}"; }

# wait_quiet: with QUIET_WAIT > 0, waits (at most QUIET_WAIT seconds) until all
# CPUs together were below QUIET_PCT % busy over 2 s (the benchmark's own
# upstreams are idle between runs).
wait_quiet() {
    [ "$QUIET_WAIT" -gt 0 ] || return 0
    local deadline=$((SECONDS + QUIET_WAIT)) b0 i0 b1 i1 pct c all=()
    for ((c = 0; c < NCPU; c++)); do all+=("$c"); done
    while :; do
        read -r b0 i0 <<<"$(cpu_jiffies "${all[@]}")"
        sleep 2
        read -r b1 i1 <<<"$(cpu_jiffies "${all[@]}")"
        pct=$((100 * (b1 - b0) / (b1 - b0 + i1 - i0 + 1)))
        [ "$pct" -ge "$QUIET_PCT" ] || return 0
        if [ "$SECONDS" -ge "$deadline" ]; then
            warn "machine still ${pct}% busy after waiting ${QUIET_WAIT}s; running anyway"
            return 0
        fi
    done
}

# ---------------------------------------------------------------- environment record
NOMINAL_RPS=$(awk -v c="$CONNS" -v d="$DELAY_BETWEEN_MS" 'BEGIN { printf "%.0f", c * 1000 / (d + 1) }')
IN_FLIGHT_EST=$(awk -v r="$NOMINAL_RPS" -v d="$DELAY_MS" 'BEGIN { printf "%.0f", r * d / 1000 }')
{
    say "date: $(date -u '+%Y-%m-%dT%H:%M:%SZ')"
    say "host: $(uname -srm), $NCPU CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    say "settings: DURATION=${DURATION}s WARMUP=${WARMUP}s ROUNDS=$ROUNDS CONNS=$CONNS DELAY_BETWEEN_MS=$DELAY_BETWEEN_MS THREADS=$THREADS MODES='$MODES'"
    say "modern: DELAY_MS=$DELAY_MS MODERN_TIMEOUT=$MODERN_TIMEOUT; ficus [shadow] max_in_flight=$SHADOW_MAX_IN_FLIGHT queue=$SHADOW_QUEUE"
    say "cpus: ficus on $PROXY_CPUS (FICUS_WORKER_THREADS=$WORKER_THREADS), wrk + legacy nginx + modern on $LOAD_CPU; CLK_TCK=$CLK_TCK"
    say "expected: about $NOMINAL_RPS req/s at most, about $IN_FLIGHT_EST copies in flight at modern"
    say "wrk: $(wrk -v 2>&1 | head -n1)"
    say "nginx: $("$NGINX" -v 2>&1)"
    say "python: $(python3 --version 2>&1)"
    say "ficus: $FICUS_BIN $("$FICUS_BIN" --version 2>&1 | head -n1), built $(date -u -r "$FICUS_BIN" '+%Y-%m-%dT%H:%M:%SZ'), sha256 $(sha256sum "$FICUS_BIN" | cut -c1-16)"
    say "work tree (not necessarily the binary's source): $(git -C "$ROOT" log -1 --format='%h %s' 2>/dev/null)$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -q . && echo ' (work tree modified)')"
} >"$OUT_DIR/env.txt"
cat "$OUT_DIR/env.txt"
[ "$IN_FLIGHT_EST" -lt "$SHADOW_MAX_IN_FLIGHT" ] ||
    warn "about $IN_FLIGHT_EST copies would be in flight, max_in_flight is $SHADOW_MAX_IN_FLIGHT: copies will queue and may be dropped"

# ---------------------------------------------------------------- upstreams
UP_DIR="$TMP/upstream"
mkdir -p "$UP_DIR"
port_busy "$UPSTREAM_PORT" && die "legacy upstream port $UPSTREAM_PORT is already in use"
render "$CONF/nginx-upstream.conf" "$UP_DIR/nginx.conf" "$UPSTREAM_PORT"
"$NGINX" -t -q -p "$UP_DIR/" -e "$UP_DIR/error.log" -c "$UP_DIR/nginx.conf" >"$UP_DIR/log" 2>&1 ||
    {
        cat "$UP_DIR/log" >&2
        die "legacy upstream nginx config test failed"
    }
taskset -c "$LOAD_CPU" "$NGINX" -p "$UP_DIR/" -e "$UP_DIR/error.log" -c "$UP_DIR/nginx.conf" >>"$UP_DIR/log" 2>&1 &
UP_PID=$!
STARTED+=("$UP_PID")
wait_ready "$UPSTREAM_PORT" "$UP_PID" "$UP_DIR/log" || die "legacy upstream did not start"
say "legacy: nginx pid $UP_PID on 127.0.0.1:$UPSTREAM_PORT (CPU $LOAD_CPU), 1024-byte JSON"

MOD_DIR="$TMP/modern"
mkdir -p "$MOD_DIR"
port_busy "$MODERN_PORT" && die "modern upstream port $MODERN_PORT is already in use"
taskset -c "$LOAD_CPU" python3 "$CONF/slow-upstream.py" --port "$MODERN_PORT" --delay-ms "$DELAY_MS" \
    --body-file "$TMP/payload.json" >"$MOD_DIR/log" 2>&1 &
MODERN_PID=$!
STARTED+=("$MODERN_PID")
wait_ready "$MODERN_PORT" "$MODERN_PID" "$MOD_DIR/log" $((2 + DELAY_MS / 1000)) || die "modern upstream did not start"
say "modern: slow-upstream.py pid $MODERN_PID on 127.0.0.1:$MODERN_PORT (CPU $LOAD_CPU), answers after $DELAY_MS ms"

# ---------------------------------------------------------------- rounds
RESULTS="$OUT_DIR/results.tsv"
printf 'round\tmode\treq_per_s\tp50_us\tp99_us\tmax_us\tp999_us\trequests\terrors\tmirrored\tcompared\tfailed\tdiffering\tdropped\tdropped_queue_full\tdropped_too_large\tdropped_incomplete\tdropped_closed\tmodern_served\tmodern_peak_in_flight\tcpu_us_per_req\tficus_cpu_pct\tproxy_cpus_other_pct\tload_cpu_busy_pct\tthreads\tquiesced\tmodern_connections\tmodern_errors\n' >"$RESULTS"

read -r -a MODE_LIST <<<"$MODES"
n=${#MODE_LIST[@]}
[ "$n" -gt 0 ] || die "MODES is empty"
declare -A FAILED
for ((r = 0; r < ROUNDS; r++)); do
    order=()
    for ((i = 0; i < n; i++)); do order+=("${MODE_LIST[$(((i + r) % n))]}"); done
    say ""
    say "== round $((r + 1))/$ROUNDS: ${order[*]}"
    for mode in "${order[@]}"; do
        tag="r$((r + 1))-$mode"
        wait_quiet
        raw="$OUT_DIR/$tag.txt"
        if ! start_ficus "$mode"; then
            warn "$mode: ficus failed to start (round $((r + 1)))"
            FAILED[$mode]=1
            cp "$TMP/$mode/log" "$OUT_DIR/$tag.startup.log" 2>/dev/null
            continue
        fi
        if [ "$WARMUP" -gt 0 ]; then
            run_wrk "$WARMUP" "$OUT_DIR/$tag.warmup.txt"
        fi
        # Copies of the warm-up still in flight finish before the measurement.
        quiesce >/dev/null || warn "$mode: warm-up copies still in flight after ${QUIESCE_TIMEOUT}s"
        c0=$(shadow_counters) || c0="0 0 0 0 0 0 0 0"
        modern_stats >/dev/null
        read -r t0 _ <<<"$(tree_ticks "$FICUS_PID")"
        read -r b0 i0 <<<"$(cpu_jiffies "${PCPUS[@]}")"
        read -r lb0 li0 <<<"$(cpu_jiffies "$LOAD_CPU")"
        w0=$(now_us)
        run_wrk "$DURATION" "$raw"
        wrk_rc=$?
        # The copies of the last requests finish (about DELAY_MS) before the counters
        # and the CPU time are read, so the mirror's work for every copy is counted.
        quiesced=1
        c1=$(quiesce) || quiesced=0
        read -r t1 _ <<<"$(tree_ticks "$FICUS_PID")"
        read -r b1 i1 <<<"$(cpu_jiffies "${PCPUS[@]}")"
        read -r lb1 li1 <<<"$(cpu_jiffies "$LOAD_CPU")"
        w1=$(now_us)
        read -r mserved _ mpeak merr mconns <<<"$(modern_stats)"
        tasks=("/proc/$FICUS_PID/task/"*)
        nthreads=${#tasks[@]}
        alive=1
        kill -0 "$FICUS_PID" 2>/dev/null || alive=0
        curl -fsS --max-time 2 "http://127.0.0.1:$ADMIN_PORT/metrics" >"$OUT_DIR/$tag.metrics.txt" 2>/dev/null
        cp "$TMP/$mode/log" "$OUT_DIR/$tag.ficus.log" 2>/dev/null
        stop_pid "$FICUS_PID"

        line=$(sed -n 's/^BENCH //p' "$raw")
        linex=$(sed -n 's/^BENCHX //p' "$raw")
        if [ "$wrk_rc" -ne 0 ] || [ -z "$line" ] || [ "$alive" -eq 0 ]; then
            warn "$mode: run failed (wrk rc=$wrk_rc, ficus alive=$alive); see $raw"
            FAILED[$mode]=1
            continue
        fi
        [ "$quiesced" -eq 1 ] || warn "$mode: copies still in flight ${QUIESCE_TIMEOUT}s after the run (round $((r + 1)))"
        declare -A W=()
        for kv in $line $linex; do W[${kv%%=*}]=${kv#*=}; done
        errors=$((W[err_connect] + W[err_read] + W[err_write] + W[err_status] + W[err_timeout]))
        read -r m0 cm0 f0 d0 q0 l0 n0 x0 <<<"$c0"
        read -r m1 cm1 f1 d1 q1 l1 n1 x1 <<<"$c1"
        mirrored=$((m1 - m0)) compared=$((cm1 - cm0)) failed=$((f1 - f0)) differing=$((d1 - d0))
        dq=$((q1 - q0)) dl=$((l1 - l0)) dn=$((n1 - n0)) dc=$((x1 - x0))
        dropped=$((dq + dl + dn + dc))
        row=$(awk -v req="${W[requests]}" -v dur="${W[duration_us]}" -v wall="$((w1 - w0))" -v dt="$((t1 - t0))" \
            -v hz="$CLK_TCK" -v pb="$((b1 - b0))" -v pi="$((i1 - i0))" -v lb="$((lb1 - lb0))" -v li="$((li1 - li0))" 'BEGIN {
                rps = req / (dur / 1e6)
                cpu_ticks = dt
                per = (req > 0) ? (dt * 1e6 / hz) / req : 0
                util = 100 * (dt * 1e6 / hz) / wall
                other = (pb + pi > 0) ? 100 * (pb - dt) / (pb + pi) : 0
                if (other < 0) other = 0
                lbusy = (lb + li > 0) ? 100 * lb / (lb + li) : 0
                printf "%.1f\t%.2f\t%.1f\t%.0f\t%.0f", rps, per, util, other, lbusy
            }')
        IFS=$'\t' read -r rps per util other lbusy <<<"$row"
        printf '%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
            "$((r + 1))" "$mode" "$rps" "${W[p50_us]}" "${W[p99_us]}" "${W[max_us]}" "${W[p999_us]:-0}" "${W[requests]}" "$errors" \
            "$mirrored" "$compared" "$failed" "$differing" "$dropped" "$dq" "$dl" "$dn" "$dc" "$mserved" "$mpeak" \
            "$per" "$util" "$other" "$lbusy" "$nthreads" "$quiesced" "$mconns" "$merr" >>"$RESULTS"
        printf '%-8s %7s req/s  p50 %6sus  p99 %6sus  max %6sus  requests %s  mirrored %s compared %s dropped %s (modern served %s on %s connections, peak %s in flight)  CPU %s us/req  other %s%%\n' \
            "$mode" "$rps" "${W[p50_us]}" "${W[p99_us]}" "${W[max_us]}" "${W[requests]}" "$mirrored" "$compared" "$dropped" \
            "$mserved" "$mconns" "$mpeak" "$per" "$other"
        [ "$other" -le "$NOISE_PCT" ] ||
            warn "$mode: other processes used ${other}% of CPU(s) $PROXY_CPUS during round $((r + 1)); this run is noisy"
        [ "$errors" -eq 0 ] || warn "$mode: $errors errors/non-2xx responses in round $((r + 1)) (see $raw)"
        if [ "$mode" = mirror ]; then
            [ "$dropped" -eq 0 ] || warn "mirror: $dropped copies dropped in round $((r + 1)) (queue-full $dq, too-large $dl, incomplete $dn, closed $dc)"
            [ "$failed" -eq 0 ] || warn "mirror: $failed modern calls failed in round $((r + 1))"
            [ "$compared" -eq "$mirrored" ] || warn "mirror: $mirrored mirrored but $compared compared in round $((r + 1))"
        fi
    done
done

col() { awk -F'\t' -v p="$1" -v c="$2" 'NR > 1 && $2 == p { print $c }' "$RESULTS"; }
fmt_ms() { awk -v us="$1" 'BEGIN { printf "%.3f ms", us / 1000 }'; }

SUMMARY="$OUT_DIR/summary.md"
{
    say "## Mirroring benchmark $(date -u '+%Y-%m-%d %H:%M UTC')"
    say ""
    say "wrk ${THREADS} thread(s), $CONNS keep-alive connections each pausing ${DELAY_BETWEEN_MS} ms between requests, ${DURATION}s per run (+${WARMUP}s warm-up), $ROUNDS round(s)."
    say "legacy: nginx returning 1024-byte JSON; modern: slow-upstream.py answering the same body after ${DELAY_MS} ms."
    say "ficus (FICUS_WORKER_THREADS=$WORKER_THREADS, telemetry on, access log off) pinned to CPU(s) $PROXY_CPUS; wrk and both upstreams on CPU $LOAD_CPU."
    say "mirror = stage shadow, sample 100, noise_sample 0, [shadow] max_in_flight $SHADOW_MAX_IN_FLIGHT; nomirror = stage legacy. Medians over rounds."
    say ""
    say "| mode | req/s | p50 | p99 | max | mirrored | compared | dropped | CPU us/req |"
    say "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    for m in "${MODE_LIST[@]}"; do
        cnt=$(col "$m" 3 | wc -l)
        if [ "$cnt" -eq 0 ]; then
            say "| $m | failed | - | - | - | - | - | - | - |"
            continue
        fi
        note=""
        [ -n "${FAILED[$m]:-}" ] && note=" ($cnt/$ROUNDS runs ok)"
        if [ "$m" = mirror ]; then
            counts="$(col "$m" 10 | median) | $(col "$m" 11 | median) | $(col "$m" 14 | median)"
        else
            counts="- | - | -"
        fi
        say "| $m$note | $(printf '%.0f' "$(col "$m" 3 | median)") | $(fmt_ms "$(col "$m" 4 | median)") | $(fmt_ms "$(col "$m" 5 | median)") | $(fmt_ms "$(col "$m" 6 | median)") | $counts | $(printf '%.2f' "$(col "$m" 21 | median)") |"
    done
    say ""
    p99m=$(col mirror 5 | median)
    p99n=$(col nomirror 5 | median)
    if [ -n "$p99m" ] && [ -n "$p99n" ]; then
        ratio=$(awk -v a="$p99m" -v b="$p99n" 'BEGIN { printf "%.3f", a / b }')
        rounds=$(awk -F'\t' 'NR > 1 { p[$1, $2] = $5; if ($1 > n) n = $1 }
            END { for (i = 1; i <= n; i++) if ((i, "mirror") in p && (i, "nomirror") in p) { printf "%s%.3f", sep, p[i, "mirror"] / p[i, "nomirror"]; sep = " / " } }' "$RESULTS")
        say "p99 ratio mirror/nomirror: **$ratio** (median p99 $(fmt_ms "$p99m") / $(fmt_ms "$p99n")); per round: $rounds"
        say ""
        if awk -v x="$ratio" -v lim="$P99_LIMIT" 'BEGIN { exit !(x <= lim) }'; then
            say "**PASS**: mirror p99 <= $P99_LIMIT x nomirror p99 ($ratio)"
        else
            say "**FAIL**: mirror p99 > $P99_LIMIT x nomirror p99 ($ratio)"
        fi
        drops=$(col mirror 14 | awk '{ s += $1 } END { print s + 0 }')
        fails=$(col mirror 12 | awk '{ s += $1 } END { print s + 0 }')
        unq=$(col mirror 26 | awk '$1 != 1 { n++ } END { print n + 0 }')
        mis=$(awk -F'\t' 'NR > 1 && $2 == "mirror" && $10 != $11 { n++ } END { print n + 0 }' "$RESULTS")
        if [ "$drops" -eq 0 ] && [ "$fails" -eq 0 ] && [ "$mis" -eq 0 ] && [ "$unq" -eq 0 ]; then
            say "Every copy was mirrored and compared: 0 dropped, 0 failed, mirrored = compared in every mirror run."
        else
            say "Not every copy made it: $drops dropped, $fails failed, $mis run(s) with mirrored != compared, $unq run(s) not quiesced."
        fi
    else
        say "p99 ratio: needs both modes (MODES has '$MODES')."
    fi
    say ""
    say "### Raw (every run)"
    say ""
    say "| round | mode | req/s | p50 | p99 | p99.9 | max | requests | errors | mirrored | compared | failed | differing | dropped | modern served | modern conns | modern peak in flight | CPU us/req | ficus CPU % | other % on CPU(s) $PROXY_CPUS | cpu$LOAD_CPU busy % |"
    say "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    awk -F'\t' 'NR > 1 { printf "| %s | %s | %.0f | %.3f ms | %.3f ms | %.3f ms | %.3f ms | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
        $1, $2, $3, $4 / 1000, $5 / 1000, $7 / 1000, $6 / 1000, $8, $9, $10, $11, $12, $13, $14, $19, $27, $20, $21, $22, $23, $24 }' "$RESULTS"
    noisy=$(awk -F'\t' -v lim="$NOISE_PCT" 'NR > 1 && $23 > lim { printf "%sround %s %s (%s%%)", sep, $1, $2, $23; sep = ", " }' "$RESULTS")
    if [ -n "$noisy" ]; then
        say ""
        say "Noisy runs (other processes used more than ${NOISE_PCT}% of CPU(s) $PROXY_CPUS): $noisy. Re-run on a quiet machine for final numbers."
    fi
} >"$SUMMARY"

# ---------------------------------------------------------------- comparison micro-benchmark
if [ "$BENCH_COMPARE" = 1 ]; then
    if [ -z "${CARGO_TARGET_DIR:-}" ]; then
        case "$FICUS_BIN" in
            */release/ficus) CARGO_TARGET_DIR=$(dirname "$(dirname "$FICUS_BIN")") ;;
            *) CARGO_TARGET_DIR="$ROOT/target" ;;
        esac
    fi
    # Absolute: criterion resolves a relative CARGO_TARGET_DIR against the bench's own
    # working directory (the crate's folder) and would write its reports there.
    case "$CARGO_TARGET_DIR" in /*) ;; *) CARGO_TARGET_DIR="$PWD/$CARGO_TARGET_DIR" ;; esac
    say ""
    say "ficus-compare criterion bench (CARGO_TARGET_DIR=$CARGO_TARGET_DIR; builds first, up to ${COMPARE_TIMEOUT}s)"
    (cd "$ROOT" && CARGO_TARGET_DIR="$CARGO_TARGET_DIR" timeout "$COMPARE_TIMEOUT" \
        cargo bench -j "${CARGO_JOBS:-1}" -p ficus-compare -- --warm-up-time 1 --measurement-time 3) \
        >"$OUT_DIR/compare-bench.txt" 2>&1
    crc=$?
    {
        say ""
        say "### Comparison throughput (\`cargo bench -p ficus-compare\`)"
        say ""
        if [ "$crc" -eq 0 ]; then
            say '```'
            grep -E '^bodies:|time:|thrpt:|^[A-Za-z0-9_/ -]+$' "$OUT_DIR/compare-bench.txt" | grep -vE '^ *(Benchmarking|Blocking|Running|Compiling|Finished|Gnuplot|Warning)' | grep -v '^ *$'
            say '```'
        else
            say "cargo bench failed or timed out (exit $crc); see compare-bench.txt."
        fi
    } >>"$SUMMARY"
fi

say ""
cat "$SUMMARY"
say ""
say "raw output: $OUT_DIR"
