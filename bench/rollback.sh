#!/usr/bin/env bash
# Rollback benchmark: how fast ficus's rollout controller takes a failing canary
# back, what the client sees meanwhile, and how often it takes a healthy one back
# (a false rollback). A route with [route.rollout] sits at its first step (10 % of
# users on modern, by x-user-id) under a fixed open-loop load of RATE req/s (GET
# and POST mixed). After WARMUP seconds (healthy history on both sides) the modern
# service starts answering 503 to a share of its requests (t0). The load goes on
# until the rollout.rolled_back event appears on the admin API, plus TAIL seconds.
# A share of 0 in FAIL_RATES is a healthy round: modern never fails, the load runs
# WARMUP + JITTER + MAX_WAIT seconds, and any rollback is a false rollback. A
# rollback before t0 in a failing round is one too (its modern was still healthy).
# False rollbacks are results: they are counted and reported, never retried.
# Reported per round: t0, the event's time, the time to rollback, the modern
# requests between the two, the client's errors by method (whole run and after
# t0), the gates' evidence from the event, and the latency numbers of the last
# verdict (what the judge saw in a healthy round and did not act on).
# Goal: 0 false rollbacks; at the headline share (the first non-zero one, 30 %)
# rollback under GOAL_S (5) seconds (median), zero GET errors (GETs that modern
# fails fall back to legacy; POSTs do not, by design).
# ficus is pinned to PROXY_CPUS; the load generator and both upstreams (small
# Python services) to LOAD_CPU; everything on 127.0.0.1. See bench/README.md.
#
# Environment (defaults):
#   ROUNDS=3            rounds; every round runs each FAIL_RATES once, fresh processes each
#   FAIL_RATES="0.3 0 1.0" share of modern's answers that become 503 at t0; 0 is a
#                       healthy round (false rollbacks); the first non-zero share is the
#                       headline (the issue's scenario)
#   RATE=200            requests per second (open loop)
#   POST_PCT=20         share of POSTs (the rest are GETs)
#   USERS=10000         distinct x-user-id values (drawn at random per request)
#   STEP=10             the rollout's first step (percent of users on modern)
#   WARMUP=15           seconds of load before t0...
#   JITTER=1            ...plus a random 0..JITTER s (seeded per round), so that t0 falls
#                       on a random phase of the controller's 1 s tick
#   TAIL=5              seconds of load after the rollback event was seen
#   MAX_WAIT=30         seconds after t0 without a rollback before the round gives up
#   POLL_MS=100         how often the client polls the admin API for the event
#   INTERVAL=3600s MIN_REQUESTS=1000000   the rollout's step interval and min_requests:
#                       large, so the step never promotes during a round
#   GOAL_S=5            the goal for the time to rollback (median of the headline rate)
#   PROXY_CPUS=0        taskset CPU list for ficus
#   LOAD_CPU=1          CPU of the load generator and the two upstream services
#   WORKER_THREADS=1    FICUS_WORKER_THREADS
#   UPSTREAMS=separate  legacy and modern in two Python processes; "shared": one process
#                       (one event loop) serving both ports
#   FICUS_BIN=target/release/ficus (relative to the repository root)
#   FICUS_COMMIT=       optional note for env.txt: what the binary was built from
#   SKIP_INSTALL=0      1: do not apt-get install missing curl/taskset/python3
#   LOCK_WAIT=900       seconds to wait for another benchmark (shared lock with proxy.sh)
#   OUT_DIR=bench/out/rollback-<timestamp>
#   LEGACY_PORT=18380 MODERN_PORT=18381 FICUS_PORT=18384 ADMIN_PORT=18391
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
ROOT=$(dirname "$HERE")
CONF="$HERE/conf"

ROUNDS=${ROUNDS:-3}
FAIL_RATES=${FAIL_RATES:-"0.3 0 1.0"}
RATE=${RATE:-200}
POST_PCT=${POST_PCT:-20}
USERS=${USERS:-10000}
STEP=${STEP:-10}
WARMUP=${WARMUP:-15}
JITTER=${JITTER:-1}
TAIL=${TAIL:-5}
MAX_WAIT=${MAX_WAIT:-30}
POLL_MS=${POLL_MS:-100}
INTERVAL=${INTERVAL:-3600s}
MIN_REQUESTS=${MIN_REQUESTS:-1000000}
GOAL_S=${GOAL_S:-5}
PROXY_CPUS=${PROXY_CPUS:-0}
LOAD_CPU=${LOAD_CPU:-1}
WORKER_THREADS=${WORKER_THREADS:-1}
UPSTREAMS=${UPSTREAMS:-separate}
LEGACY_PORT=${LEGACY_PORT:-18380}
MODERN_PORT=${MODERN_PORT:-18381}
FICUS_PORT=${FICUS_PORT:-18384}
ADMIN_PORT=${ADMIN_PORT:-18391}
FICUS_BIN=${FICUS_BIN:-target/release/ficus}
SKIP_INSTALL=${SKIP_INSTALL:-0}
READY_TIMEOUT=${READY_TIMEOUT:-20}
STAMP=$(date +%Y%m%d-%H%M%S)
OUT_DIR=${OUT_DIR:-"$HERE/out/rollback-$STAMP"}


# ---------------------------------------------------------------- checks
[ -z "${MAX_ATTEMPTS:-}" ] || warn "MAX_ATTEMPTS is ignored: a false rollback is a result, reported, never retried"
for v in ROUNDS RATE USERS WARMUP TAIL MAX_WAIT POLL_MS MIN_REQUESTS LOAD_CPU WORKER_THREADS \
    READY_TIMEOUT LEGACY_PORT MODERN_PORT FICUS_PORT ADMIN_PORT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer (got '${!v}')"
done
for v in POST_PCT STEP GOAL_S JITTER; do
    [[ ${!v} =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "$v must be a number (got '${!v}')"
done
[ "$ROUNDS" -ge 1 ] || die "ROUNDS must be >= 1"
case "$UPSTREAMS" in separate | shared) ;; *) die "UPSTREAMS must be separate or shared (got '$UPSTREAMS')" ;; esac
[ "$RATE" -ge 1 ] || die "RATE must be >= 1"
[ "$USERS" -ge 1 ] || die "USERS must be >= 1"
[ "$WORKER_THREADS" -ge 1 ] || die "WORKER_THREADS must be >= 1"
[ "$MAX_WAIT" -ge 1 ] || die "MAX_WAIT must be >= 1"
awk -v s="$STEP" 'BEGIN { exit !(s > 0 && s < 100) }' || die "STEP must be above 0 and below 100 (got $STEP)"
awk -v p="$POST_PCT" 'BEGIN { exit !(p <= 100) }' || die "POST_PCT must be at most 100"
[[ $INTERVAL =~ ^[0-9]+(ms|s|m|h)$ ]] || die "INTERVAL must be a ficus duration like 3600s or 60m"
read -r -a RATES <<<"$FAIL_RATES"
[ "${#RATES[@]}" -ge 1 ] || die "FAIL_RATES is empty"
HEAD=
for f in "${RATES[@]}"; do
    [[ $f =~ ^(0(\.[0-9]+)?|1(\.0+)?)$ ]] ||
        die "every FAIL_RATES entry must be a share in [0, 1], like 0.3, or 0 for a healthy round (got '$f')"
    if [ -z "$HEAD" ] && awk -v f="$f" 'BEGIN { exit !(f > 0) }'; then HEAD=$f; fi
done
[[ $PROXY_CPUS =~ ^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$ ]] || die "PROXY_CPUS must be a taskset CPU list like 0 or 0,1 (got '$PROXY_CPUS')"
[ "$(uname -s)" = Linux ] || die "Linux only (uses /proc and taskset)"

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

install_missing() {
    local missing=() t
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
}
if [ "$SKIP_INSTALL" != 1 ]; then
    install_missing || die "install step failed"
fi
for t in curl taskset python3 timeout; do
    command -v "$t" >/dev/null 2>&1 || die "$t not found"
done
# The interpreter itself (not a pyenv shim): taskset pins it, not a wrapper.
PYTHON=$(python3 -c 'import sys; print(sys.executable)') || die "python3 does not run"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    die "python3 is $("$PYTHON" -V 2>&1); the load generator needs 3.11 or later (asyncio.timeout)"

NCPU=$(getconf _NPROCESSORS_ONLN)
IFS=, read -r -a _parts <<<"$PROXY_CPUS"
for part in "${_parts[@]}" "$LOAD_CPU"; do
    [ "${part#*-}" -lt "$NCPU" ] || die "CPU ${part#*-} does not exist; this machine has $NCPU"
done
CLK_TCK=$(getconf CLK_TCK)

case "$FICUS_BIN" in
    /*) ;;
    *) if [ ! -e "$FICUS_BIN" ] && [ -e "$ROOT/$FICUS_BIN" ]; then FICUS_BIN="$ROOT/$FICUS_BIN"; fi ;;
esac
[ -x "$FICUS_BIN" ] || die "ficus: binary not built, run cargo build --release (looked for $FICUS_BIN)"

# ---------------------------------------------------------------- state and teardown
TMP=$(mktemp -d /tmp/ficus-bench-rollback.XXXXXX)
mkdir -p "$OUT_DIR" || die "cannot create $OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
STARTED=()


trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# render TEMPLATE DEST
render() {
    local text
    text=$(<"$1")
    text=${text//@PORT@/$FICUS_PORT}
    text=${text//@LEGACY_PORT@/$LEGACY_PORT}
    text=${text//@MODERN_PORT@/$MODERN_PORT}
    text=${text//@ADMIN_PORT@/$ADMIN_PORT}
    text=${text//@STEP@/$STEP}
    text=${text//@INTERVAL@/$INTERVAL}
    text=${text//@MIN_REQUESTS@/$MIN_REQUESTS}
    printf '%s\n' "$text" >"$2"
}


# wait_http URL PID LOG: until URL answers 200 (up to READY_TIMEOUT).
wait_http() {
    local url=$1 pid=$2 logf=$3 deadline
    deadline=$((SECONDS + READY_TIMEOUT))
    while [ "$SECONDS" -lt "$deadline" ]; do
        alive "$pid" "$logf" || return 1
        curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null && return 0
        sleep 0.1
    done
    warn "$url not ready after ${READY_TIMEOUT}s; log tail:"
    tail -n 20 "$logf" >&2
    return 1
}

# wait_rollout: until GET /api/v1/rollouts shows route "bench" running at the
# first step (the controller's first tick).
wait_rollout() {
    local deadline body
    deadline=$((SECONDS + READY_TIMEOUT))
    while [ "$SECONDS" -lt "$deadline" ]; do
        body=$(curl -fsS --max-time 1 "http://127.0.0.1:$ADMIN_PORT/api/v1/rollouts" 2>/dev/null) &&
            printf '%s' "$body" | "$PYTHON" -c '
import json, sys
want = float(sys.argv[1])
for r in json.load(sys.stdin):
    if r["route"] == "bench" and r["status"] == "running" and r["step"] == 0 and abs((r["weight"] or 0) - want) < 1e-9:
        sys.exit(0)
sys.exit(1)' "$STEP" && return 0
        sleep 0.2
    done
    warn "the rollout did not start at ${STEP}% within ${READY_TIMEOUT}s; last answer: ${body:-none}"
    return 1
}

# "busy total" jiffies of the whole machine (first line of /proc/stat)
machine_jiffies() {
    local name user nice sys idle iow irq sirq steal rest
    read -r name user nice sys idle iow irq sirq steal rest </proc/stat
    echo "$((user + nice + sys + irq + sirq + steal)) $((user + nice + sys + idle + iow + irq + sirq + steal))"
}
# utime+stime ticks of one process (all its threads)
proc_ticks() {
    local rest
    { read -r rest <"/proc/$1/stat"; } 2>/dev/null || {
        echo 0
        return
    }
    rest=${rest##*) }
    read -r -a f <<<"$rest"
    echo "$((f[11] + f[12]))"
}

# start_upstream NAME SEED DIR NAME=PORT...: one rollback-upstream.py process
# serving the given services; sets UP_PID.
start_upstream() {
    local name=$1 seed=$2 dir=$3 spec args=()
    shift 3
    for spec in "$@"; do
        port_busy "${spec#*=}" && {
            warn "${spec%%=*}: port ${spec#*=} is already in use"
            return 1
        }
        args+=(--listen "$spec")
    done
    taskset -c "$LOAD_CPU" "$PYTHON" "$CONF/rollback-upstream.py" "${args[@]}" --seed "$seed" \
        >"$dir/$name.log" 2>&1 &
    local pid=$!
    STARTED+=("$pid")
    for spec in "$@"; do
        wait_http "http://127.0.0.1:${spec#*=}/_control/health" "$pid" "$dir/$name.log" || return 1
    done
    UP_PID=$pid
}

# ---------------------------------------------------------------- environment record
{
    say "date: $(date -u '+%Y-%m-%dT%H:%M:%SZ')"
    say "host: $(uname -srm), $NCPU CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    say "repository: HEAD $(git -C "$ROOT" log -1 --format='%h %s' 2>/dev/null || echo unknown); $(git -C "$ROOT" diff --name-only HEAD -- crates 2>/dev/null | wc -l) file(s) under crates/ differ from HEAD (the binary may come from elsewhere: see its sha256)"
    say "settings: ROUNDS=$ROUNDS FAIL_RATES='$FAIL_RATES' RATE=$RATE POST_PCT=$POST_PCT USERS=$USERS STEP=$STEP WARMUP=${WARMUP}s JITTER=${JITTER}s TAIL=${TAIL}s MAX_WAIT=${MAX_WAIT}s POLL_MS=$POLL_MS INTERVAL=$INTERVAL MIN_REQUESTS=$MIN_REQUESTS PROXY_CPUS=$PROXY_CPUS LOAD_CPU=$LOAD_CPU WORKER_THREADS=$WORKER_THREADS UPSTREAMS=$UPSTREAMS"
    say "python: $PYTHON $("$PYTHON" -V 2>&1)"
    say "ficus: $FICUS_BIN $("$FICUS_BIN" --version 2>&1 | head -n1), modified $(date -u -r "$FICUS_BIN" '+%Y-%m-%dT%H:%M:%SZ'), sha256 $(sha256sum "$FICUS_BIN" | cut -c1-16)"
    [ -z "${FICUS_COMMIT:-}" ] || say "ficus built from: $FICUS_COMMIT"
    say "loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT_DIR/env.txt"
cat "$OUT_DIR/env.txt"

# ---------------------------------------------------------------- rounds
RESULTS="$OUT_DIR/results.tsv"
COLS=(round fail_rate rolled_back early_rollback false_rollback warmup_s t0_ms rb_ms seen_ms ttr_s requests offered_rps
    get get_err get_after_t0 get_err_after_t0 post post_err post_after_t0 post_err_after_t0 conn_errors
    client_t0_rb client_modern_t0_rb client_fallback_t0_rb client_err_after_rb last_err_minus_rb_ms
    modern_t0_rb modern_503_t0_rb modern_get_t0_rb modern_post_t0_rb modern_after_rb modern_before_t0
    ev_modern_requests ev_modern_errors ev_legacy_requests ev_legacy_errors ev_modern_rate
    ev_modern_lower_bound ev_legacy_upper_bound ev_confirm_limit gates_confirmed ev_in_step_s
    ev_p99_ratio ev_p99_delta_ms ev_latency_samples ev_median_ratio ev_rank_p
    last_decision last_in_step_s last_latency_samples last_p99_modern_ms last_p99_legacy_ms last_p99_ratio
    last_p99_delta_ms last_p99_outcome last_median_ratio last_median_delta_ms last_rank_p last_rank_outcome
    error_kinds conns_peak conns_expired busy_pct ficus_cpu_pct)
(
    IFS=$'\t'
    printf '%s\n' "${COLS[*]}"
) >"$RESULTS"

LOAD_TIMEOUT=$((WARMUP + ${JITTER%.*} + MAX_WAIT + TAIL + 61))
FAILED_RUNS=()
FALSE_RUNS=()

# run_one ROUND FAIL_RATE TAG: one run with fresh processes. Returns 0 when the
# load ran (whatever the rollout did: every outcome is recorded in results.tsv),
# 1 when something failed.
run_one() {
    local r=$1 fr=$2 tag=$3 dir="$TMP/$3" pids=() pid ficus_pid
    mkdir -p "$dir"
    UP_PID=
    if [ "$UPSTREAMS" = shared ]; then
        start_upstream upstreams "$r" "$dir" "legacy=$LEGACY_PORT" "modern=$MODERN_PORT" || die "upstream services did not start"
        pids+=("$UP_PID")
    else
        start_upstream legacy "$r" "$dir" "legacy=$LEGACY_PORT" || die "legacy service did not start"
        pids+=("$UP_PID")
        start_upstream modern "$((1000 + r))" "$dir" "modern=$MODERN_PORT" || die "modern service did not start"
        pids+=("$UP_PID")
    fi
    port_busy "$FICUS_PORT" && die "ficus port $FICUS_PORT is already in use"
    port_busy "$ADMIN_PORT" && die "admin port $ADMIN_PORT is already in use"
    render "$CONF/rollback-ficus.toml" "$dir/ficus.toml"
    FICUS_WORKER_THREADS=$WORKER_THREADS RUST_LOG=${RUST_LOG:-info} \
        taskset -c "$PROXY_CPUS" "$FICUS_BIN" run -c "$dir/ficus.toml" >"$dir/ficus.log" 2>&1 &
    ficus_pid=$!
    STARTED+=("$ficus_pid")
    if ! wait_http "http://127.0.0.1:$ADMIN_PORT/readyz" "$ficus_pid" "$dir/ficus.log" ||
        ! wait_http "http://127.0.0.1:$FICUS_PORT/" "$ficus_pid" "$dir/ficus.log" ||
        ! wait_rollout; then
        warn "$tag: ficus did not come up with its rollout (log: $OUT_DIR/$tag.ficus.log)"
        cp "$dir/ficus.log" "$OUT_DIR/$tag.ficus.log" 2>/dev/null
        stop_pid "$ficus_pid"
        for pid in "${pids[@]}"; do stop_pid "$pid"; done
        return 1
    fi

    local mb0 mt0 mb1 mt1 ft0 ft1 s0 s1 load_rc alive line
    read -r mb0 mt0 <<<"$(machine_jiffies)"
    ft0=$(proc_ticks "$ficus_pid")
    s0=$(date +%s%N)
    timeout -k 5 "$LOAD_TIMEOUT" taskset -c "$LOAD_CPU" "$PYTHON" "$CONF/rollback-load.py" \
        --port "$FICUS_PORT" --admin-port "$ADMIN_PORT" --modern-port "$MODERN_PORT" \
        --rate "$RATE" --post-pct "$POST_PCT" --users "$USERS" --warmup "$WARMUP" --warmup-jitter "$JITTER" \
        --fail-rate "$fr" --tail "$TAIL" --max-wait "$MAX_WAIT" --poll-ms "$POLL_MS" \
        --seed "$r" --out "$OUT_DIR/$tag" >"$OUT_DIR/$tag.txt" 2>&1
    load_rc=$?
    s1=$(date +%s%N)
    ft1=$(proc_ticks "$ficus_pid")
    read -r mb1 mt1 <<<"$(machine_jiffies)"
    alive=1
    kill -0 "$ficus_pid" 2>/dev/null || alive=0
    curl -fsS --max-time 5 "http://127.0.0.1:$ADMIN_PORT/api/v1/events?route=bench&limit=100" \
        -o "$OUT_DIR/$tag.events.json" 2>/dev/null
    curl -fsS --max-time 5 "http://127.0.0.1:$ADMIN_PORT/api/v1/rollouts" \
        -o "$OUT_DIR/$tag.rollouts-after.json" 2>/dev/null
    stop_pid "$ficus_pid"
    for pid in "${pids[@]}"; do stop_pid "$pid"; done
    cp "$dir/ficus.log" "$OUT_DIR/$tag.ficus.log" 2>/dev/null

    line=$(sed -n 's/^ROLLBACK //p' "$OUT_DIR/$tag.txt")
    if [ "$load_rc" -ne 0 ] || [ -z "$line" ] || [ "$alive" -eq 0 ]; then
        warn "$tag: run failed (load rc=$load_rc, ficus alive=$alive); see $OUT_DIR/$tag.txt"
        tail -n 5 "$OUT_DIR/$tag.txt" >&2
        return 1
    fi
    local -A W=()
    local kv c row=()
    for kv in $line; do W[${kv%%=*}]=${kv#*=}; done
    W[round]=$r
    W[fail_rate]=$fr
    W[busy_pct]=$(awk -v b="$((mb1 - mb0))" -v t="$((mt1 - mt0))" 'BEGIN { printf "%.0f", (t > 0) ? 100 * b / t : 0 }')
    W[ficus_cpu_pct]=$(awk -v d="$((ft1 - ft0))" -v hz="$CLK_TCK" -v ns="$((s1 - s0))" 'BEGIN { printf "%.1f", 100 * d / hz / (ns / 1e9) }')
    for c in "${COLS[@]}"; do row+=("${W[$c]:--}"); done
    (
        IFS=$'\t'
        printf '%s\n' "${row[*]}"
    ) >>"$RESULTS"
    if [ "${W[rolled_back]}" = 1 ]; then
        printf 'fail %-4s rolled back %6ss after t0 | modern %s requests (%s x 503) t0->rollback | client errors GET %s/%s POST %s/%s (all/after t0) | gate: modern %s errors of %s, lower bound %s > limit %s | machine %s%% busy\n' \
            "$fr" "${W[ttr_s]}" "${W[modern_t0_rb]}" "${W[modern_503_t0_rb]}" "${W[get_err]}" "${W[get_err_after_t0]}" \
            "${W[post_err]}" "${W[post_err_after_t0]}" "${W[ev_modern_errors]}" "${W[ev_modern_requests]}" \
            "${W[ev_modern_lower_bound]}" "${W[ev_confirm_limit]}" "${W[busy_pct]}"
        return 0
    fi
    if [ "${W[false_rollback]}" = 1 ]; then
        FALSE_RUNS+=("$tag")
        warn "$tag: FALSE ROLLBACK: a healthy modern was rolled back ${W[ev_in_step_s]} s into the step (confirmed: ${W[gates_confirmed]}; $(grep -m1 '^EVENT ' "$OUT_DIR/$tag.txt" | cut -c7-))"
        return 0
    fi
    if [ "$fr" = 0 ] || awk -v f="$fr" 'BEGIN { exit !(f == 0) }'; then
        printf 'fail %-4s healthy: not rolled back in %s s | last verdict %s: p99 modern %s ms vs legacy %s ms (x%s, %s ms), median x%s (%s ms) | client errors GET %s POST %s | machine %s%% busy\n' \
            "$fr" "${W[last_in_step_s]}" "${W[last_decision]}" "${W[last_p99_modern_ms]}" "${W[last_p99_legacy_ms]}" \
            "${W[last_p99_ratio]}" "${W[last_p99_delta_ms]}" "${W[last_median_ratio]}" "${W[last_median_delta_ms]}" \
            "${W[get_err]}" "${W[post_err]}" "${W[busy_pct]}"
        return 0
    fi
    warn "$tag: no rollback within ${MAX_WAIT}s of t0; see $OUT_DIR/$tag.events.json"
    return 0
}

n=${#RATES[@]}
for ((r = 1; r <= ROUNDS; r++)); do
    order=()
    for ((i = 0; i < n; i++)); do order+=("${RATES[$(((i + r - 1) % n))]}"); done
    say ""
    say "== round $r/$ROUNDS: fail rates ${order[*]}"
    for fr in "${order[@]}"; do
        tag="r$r-fail$fr"
        run_one "$r" "$fr" "$tag" || FAILED_RUNS+=("$tag")
    done
done

# ---------------------------------------------------------------- summary
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit } if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
colnum() {
    local i
    for i in "${!COLS[@]}"; do [ "${COLS[$i]}" = "$1" ] && echo $((i + 1)) && return; done
}
is_zero() { awk -v f="$1" 'BEGIN { exit !(f == 0) }'; }
# rows FAIL_RATE [FILTER_COLUMN]: the runs (data lines) of this share, all of them or those
# whose FILTER_COLUMN is 1
rows() { awk -F'\t' -v f="$1" -v fc="$(colnum fail_rate)" -v k="${2:+$(colnum "$2")}" 'NR > 1 && $fc + 0 == f + 0 && (k == "" || $k == 1)' "$RESULTS"; }
# col FAIL_RATE NAME: the column over the runs that rolled back after t0
col() { rows "$1" rolled_back | awk -F'\t' -v c="$(colnum "$2")" '$c != "-" { print $c }'; }
# allcol FAIL_RATE NAME: the column over every run of this share
allcol() { rows "$1" | awk -F'\t' -v c="$(colnum "$2")" '$c != "-" { print $c }'; }
sum() { awk '{ s += $1 } END { print s + 0 }'; }
count() { rows "$@" | wc -l; }
pct() { awk -v f="$1" 'BEGIN { printf "%g %%", f * 100 }'; }
fmt_s() { awk '$1 != "-" { printf "%.2f s", $1; next } { print "-" }'; }

# Every run whose healthy modern was rolled back: every rollback of a healthy round, and
# every rollback before t0 of a failing one.
false_total=0
healthy_runs=0
healthy_false=0
for fr in "${RATES[@]}"; do
    false_total=$((false_total + $(count "$fr" false_rollback)))
    if is_zero "$fr"; then
        healthy_runs=$((healthy_runs + $(count "$fr")))
        healthy_false=$((healthy_false + $(count "$fr" false_rollback)))
    fi
done
get_total=0
for fr in "${RATES[@]}"; do get_total=$((get_total + $(allcol "$fr" get_err | sum))); done

SUMMARY="$OUT_DIR/summary.md"
{
    say "## Rollback benchmark $(date -u '+%Y-%m-%d %H:%M UTC')"
    say ""
    say "$RATE req/s open loop ($POST_PCT % POST), $USERS users by \`x-user-id\`, rollout at $STEP % (default gates), ${WARMUP}-$(awk -v w="$WARMUP" -v j="$JITTER" 'BEGIN { print w + j }') s of healthy load, then modern answers 503 to a share of its requests (t0); a share of 0 is a healthy round, judged for the whole run (up to $((WARMUP + ${JITTER%.*} + MAX_WAIT)) s). $ROUNDS round(s) per share, fresh processes each (upstreams: $UPSTREAMS). A false rollback (a healthy modern rolled back) is a result: never retried."
    say ""
    say "| modern | rounds | rolled back | time to rollback, median (worst) | GET errors (all runs) |"
    say "|---|---:|---:|---:|---:|"
    if [ "$healthy_runs" -gt 0 ]; then
        say "| healthy (fails 0 %) | $healthy_runs | **$healthy_false of $healthy_runs** (false rollbacks) | - | $(allcol 0 get_err | sum) |"
    fi
    if [ -n "$HEAD" ]; then
        say "| fails $(pct "$HEAD") from t0 | $(count "$HEAD") | $(count "$HEAD" rolled_back) of $(count "$HEAD") after t0, $(count "$HEAD" early_rollback) before t0 (false) | **$(col "$HEAD" ttr_s | median | fmt_s)** ($(col "$HEAD" ttr_s | sort -g | tail -n1 | fmt_s)) | $(allcol "$HEAD" get_err | sum) |"
    fi
    say ""
    verdict=PASS
    why=()
    [ "$false_total" -eq 0 ] || {
        verdict=FAIL
        why+=("$false_total false rollback(s)")
    }
    [ "$healthy_runs" -gt 0 ] || why+=("no healthy round was run (add 0 to FAIL_RATES)")
    if [ -n "$HEAD" ]; then
        ok_rounds=$(count "$HEAD" rolled_back)
        med=$(col "$HEAD" ttr_s | median)
        if [ "$ok_rounds" -ne "$ROUNDS" ]; then
            verdict=FAIL
            why+=("only $ok_rounds of $ROUNDS rounds at $(pct "$HEAD") rolled back after t0")
        fi
        if [ "$med" = - ] || ! awk -v m="$med" -v g="$GOAL_S" 'BEGIN { exit !(m < g) }'; then
            verdict=FAIL
            why+=("median time to rollback ${med} s, goal under ${GOAL_S} s")
        fi
    else
        why+=("no failing share was run")
    fi
    [ "$get_total" -eq 0 ] || {
        verdict=FAIL
        why+=("$get_total GET error(s)")
    }
    because=""
    for w in "${why[@]}"; do because+="${because:+; }$w"; done
    say "**Goal (0 false rollbacks; at $(pct "${HEAD:-0.3}") failures the median time to rollback under ${GOAL_S} s; 0 GET errors): $verdict**${because:+ ($because)}."

    failing=()
    for fr in "${RATES[@]}"; do is_zero "$fr" || failing+=("$fr"); done
    if [ "${#failing[@]}" -gt 0 ]; then
        say ""
        say "### Failing modern"
        say ""
        say "Medians over the runs that rolled back after t0."
        say ""
        say "| modern fails | rounds rolled back | time to rollback | modern requests t0 -> rollback (503s) | GET errors, whole run / after t0 | POST errors, whole run / after t0 | gate at rollback: modern errors / requests | lower bound vs confirm limit | false rollbacks before t0 |"
        say "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
        for fr in "${failing[@]}"; do
            cnt=$(count "$fr" rolled_back)
            if [ "$cnt" -eq 0 ]; then
                say "| $(pct "$fr") | 0/$ROUNDS | - | - | - | - | - | - | $(count "$fr" early_rollback) |"
                continue
            fi
            say "| $(pct "$fr") | $cnt/$ROUNDS | $(col "$fr" ttr_s | median | fmt_s) | $(col "$fr" modern_t0_rb | median) ($(col "$fr" modern_503_t0_rb | median)) | $(col "$fr" get_err | median) / $(col "$fr" get_err_after_t0 | median) | $(col "$fr" post_err | median) / $(col "$fr" post_err_after_t0 | median) | $(col "$fr" ev_modern_errors | median) / $(col "$fr" ev_modern_requests | median) | $(col "$fr" ev_modern_lower_bound | median | awk '{ printf "%.2f %%", $1 * 100 }') vs $(col "$fr" ev_confirm_limit | median | awk '{ printf "%.2f %%", $1 * 100 }') | $(count "$fr" early_rollback) |"
        done
    fi
    if [ "$healthy_runs" -gt 0 ]; then
        say ""
        say "### Healthy modern: what the judge saw and did not act on"
        say ""
        say "The latency gates' numbers in the last verdict of each healthy run that was not rolled back (medians, with the range over runs). A p99 counts as slower only above legacy's by the ratio (1.5) and by \`min_delta\` (5 ms); the rank test compares modern with legacy raised the same way."
        say ""
        say "| runs | judged for | modern / legacy samples | p99 modern / legacy | p99 ratio | p99 difference | median ratio | median difference | latency-p99 / latency-rank outcomes |"
        say "|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        lastcol() { rows 0 | awk -F'\t' -v c="$(colnum "$1")" -v fb="$(colnum false_rollback)" '$fb != 1 && $c != "-" { print $c }'; }
        range() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR) printf "%s to %s", lo, hi; else printf "-" }'; }
        signed() { awk '$1 != "-" { printf "%+.3f", $1; next } { print "-" }'; }
        outcomes=$(rows 0 | awk -F'\t' -v p="$(colnum last_p99_outcome)" -v k="$(colnum last_rank_outcome)" -v fb="$(colnum false_rollback)" '$fb != 1 { n[$p " / " $k]++ } END { for (o in n) printf "%s%s: %d", (s++ ? ", " : ""), o, n[o] }')
        say "| $((healthy_runs - healthy_false)) | $(lastcol last_in_step_s | median) s | $(lastcol last_latency_samples | awk -F/ '{ print $1 }' | median) / $(lastcol last_latency_samples | awk -F/ '{ print $2 }' | median) | $(lastcol last_p99_modern_ms | median) / $(lastcol last_p99_legacy_ms | median) ms | x$(lastcol last_p99_ratio | median) ($(lastcol last_p99_ratio | range)) | $(lastcol last_p99_delta_ms | median | signed) ms ($(lastcol last_p99_delta_ms | range)) | x$(lastcol last_median_ratio | median) ($(lastcol last_median_ratio | range)) | $(lastcol last_median_delta_ms | median | signed) ms | ${outcomes:--} |"
    fi
    if [ "$false_total" -gt 0 ]; then
        say ""
        say "### False rollbacks"
        say ""
        say "| run | in the step | before t0 | confirmed gates | latency samples modern/legacy | p99 ratio | p99 difference | median ratio | rank test p |"
        say "|---|---:|---|---|---:|---:|---:|---:|---:|"
        awk -F'\t' '
            NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
            $c["false_rollback"] == 1 {
                printf "| r%s-fail%s | %s s | %s | %s | %s | %s | %s ms | %s | %s |\n", $c["round"], $c["fail_rate"], $c["ev_in_step_s"], ($c["early_rollback"] == 1 ? "yes" : "no"), $c["gates_confirmed"], $c["ev_latency_samples"], $c["ev_p99_ratio"], $c["ev_p99_delta_ms"], $c["ev_median_ratio"], $c["ev_rank_p"]
            }' "$RESULTS"
    fi
    say ""
    say "### Raw (every run)"
    say ""
    say "| round | fails | t0 (unix ms) | rollback event (unix ms) | to rollback | seen by poll | modern reqs t0->rb (503) | client via modern / fallback t0->rb | GET err all / after t0 | POST err all / after t0 | last error - rollback | gate: errors/requests (legacy) | LB vs limit | latency at rollback or at the end: p99 ratio, difference, median ratio | machine busy | ficus CPU |"
    say "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    awk -F'\t' '
        NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
        {
            if ($c["rolled_back"] != 1) {
                what = ($c["false_rollback"] == 1 ? "false rollback" : "no rollback")
                if ($c["false_rollback"] == 1)
                    lat = $c["ev_p99_ratio"] ", " $c["ev_p99_delta_ms"] " ms, " $c["ev_median_ratio"]
                else
                    lat = $c["last_p99_ratio"] ", " $c["last_p99_delta_ms"] " ms, " $c["last_median_ratio"]
                printf "| %s | %s | %s | %s | %s | - | - | - | %s / %s | %s / %s | - | - | - | %s | %s %% | %s %% |\n", $c["round"], $c["fail_rate"], $c["t0_ms"], $c["rb_ms"], what, $c["get_err"], $c["get_err_after_t0"], $c["post_err"], $c["post_err_after_t0"], lat, $c["busy_pct"], $c["ficus_cpu_pct"]
                next
            }
            printf "| %s | %s | %s | %s | %.2f s | +%.0f ms | %s (%s) | %s / %s | %s / %s | %s / %s | %s ms | %s/%s (%s/%s) | %.2f %% > %.2f %% | %s, %s ms, %s | %s %% | %s %% |\n", $c["round"], $c["fail_rate"], $c["t0_ms"], $c["rb_ms"], $c["ttr_s"], $c["seen_ms"] - $c["rb_ms"], $c["modern_t0_rb"], $c["modern_503_t0_rb"], $c["client_modern_t0_rb"], $c["client_fallback_t0_rb"], $c["get_err"], $c["get_err_after_t0"], $c["post_err"], $c["post_err_after_t0"], $c["last_err_minus_rb_ms"], $c["ev_modern_errors"], $c["ev_modern_requests"], $c["ev_legacy_errors"], $c["ev_legacy_requests"], $c["ev_modern_lower_bound"] * 100, $c["ev_confirm_limit"] * 100, $c["ev_p99_ratio"], $c["ev_p99_delta_ms"], $c["ev_median_ratio"], $c["busy_pct"], $c["ficus_cpu_pct"]
        }' "$RESULTS"
    kinds=$(awk -F'\t' -v k="$(colnum error_kinds)" 'NR > 1 && $k != "-" { printf "%s%s", sep, $k; sep = "," }' "$RESULTS")
    if [ -n "$kinds" ]; then
        say ""
        say "Client errors by kind (all runs): $(printf '%s' "$kinds" | tr ',' '\n' | awk -F= '{ n[$1] += $2 } END { for (k in n) printf "%s%s %d", (s++ ? ", " : ""), k, n[k] }')."
    fi
    if [ "${#FAILED_RUNS[@]}" -gt 0 ]; then
        say ""
        say "Runs that failed to start or finish: ${FAILED_RUNS[*]}."
    fi
} >"$SUMMARY"

say ""
cat "$SUMMARY"
say ""
say "raw output: $OUT_DIR"
