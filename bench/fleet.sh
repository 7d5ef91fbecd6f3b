#!/usr/bin/env bash
# Fleet benchmark: NODES `ficus run` processes on one PostgreSQL schema.
#
#   1. Propagation: CHANGES changes to one route made through the nodes in turn; for each,
#      the time from the API's answer (the commit is done) to every other node running it,
#      polled every millisecond on the node's GET /api/v1/config. Once with NOTIFY (the
#      default) and once with [fleet] listen = false (polling only, every POLL_INTERVAL).
#      Reported: p50, p99 and max over all (change, node) pairs.
#   2. Idle cost: the CPU each node spends per second with no traffic (heartbeat, lease,
#      telemetry exchange, polling), over IDLE_SECONDS, beside a single node on SQLite.
#   3. Request path: CPU per proxied GET (wrk, CONNS keep-alive connections) of a node in
#      the fleet against the same binary alone on SQLite, in ROUNDS paired rounds of
#      DURATION seconds; the median ratio with its 95 % interval (see bench/README.md).
#
# Anchors: Kong's traditional mode polls every 5 s (db_update_frequency) plus up to 5 s to
# rebuild its router; Unleash polls every 1 s. Targets (issue 16): p99 under 1 s with
# NOTIFY, under POLL_INTERVAL + 0.5 s by polling; request CPU within 3 %.
#
# Environment (defaults):
#   NODES=3 CHANGES=200 POLL_INTERVAL=2s TIMEOUT=10
#   IDLE_SECONDS=30
#   ROUNDS=10 DURATION=5 WARMUP=1 CONNS=32
#   PROXY_CPU=0 LOAD_CPU=1 (the node under load and the single node are pinned to
#   PROXY_CPU; wrk, the upstream and the other nodes to LOAD_CPU)
#   PG_URL=$FICUS_TEST_POSTGRES_URL or postgres://postgres@127.0.0.1:5432/test
#   FICUS=target/release/ficus (built when missing)
#   PARTS="propagation idle request"   which parts to run
#   OUT_DIR=bench/out/fleet-<time>
# Everything runs on 127.0.0.1, bounded in time, and stops by itself.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

NODES=${NODES:-3}
CHANGES=${CHANGES:-200}
POLL_INTERVAL=${POLL_INTERVAL:-2s}
TIMEOUT=${TIMEOUT:-10}
IDLE_SECONDS=${IDLE_SECONDS:-30}
ROUNDS=${ROUNDS:-10}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
CONNS=${CONNS:-32}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
PG_URL=${PG_URL:-${FICUS_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}}
FICUS=${FICUS:-$ROOT/target/release/ficus}
PARTS=${PARTS:-"propagation idle request"}
OUT_DIR=${OUT_DIR:-$ROOT/bench/out/fleet-$(date -u +%Y%m%dT%H%M%SZ)}
READY_TIMEOUT=30
TOKEN=bench-fleet-token-0123456789abcdef
SCHEMA=ficus_bench_fleet_$$
TMP=$(mktemp -d)
STARTED=()
trap cleanup EXIT
mkdir -p "$OUT_DIR"

for t in curl taskset psql wrk python3; do
    command -v "$t" >/dev/null 2>&1 || die "$t is required (bench/install.sh installs wrk and nginx)"
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || die "nginx not found (the upstream); run bench/install.sh"
if [ ! -x "$FICUS" ]; then
    say "building $FICUS (release)"
    (cd "$ROOT" && cargo build --release -j2 -p ficus) || die "build failed"
fi
psql "$PG_URL" -qc "select 1" >/dev/null 2>&1 || die "PostgreSQL at $PG_URL does not answer"
drop_schema() { psql "$PG_URL" -qc "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1; }
trap 'drop_schema; cleanup' EXIT

# The upstream: nginx returning 1 KB of JSON (as bench/proxy.sh).
PAYLOAD=$(make_payload)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UPSTREAM_PORT=$(free_port)
mkdir -p "$TMP/upstream"
text=$(<"$HERE/conf/nginx-upstream.conf")
text=${text//@DIR@/$TMP/upstream}
text=${text//@UPSTREAM_PORT@/$UPSTREAM_PORT}
text=${text//@PAYLOAD@/$PAYLOAD}
printf '%s\n' "$text" >"$TMP/upstream/nginx.conf"
taskset -c "$LOAD_CPU" "$NGINX" -p "$TMP/upstream/" -e "$TMP/upstream/error.log" -c "$TMP/upstream/nginx.conf" >"$TMP/upstream/log" 2>&1 &
UP_PID=$!
STARTED+=("$UP_PID")
wait_ready "$UPSTREAM_PORT" "$UP_PID" "$TMP/upstream/log" || die "upstream did not start"

# start_node NAME STORE LISTEN CPU: writes the node's config, starts it; sets NODE_PID,
# NODE_PORT, NODE_ADMIN.
start_node() {
    local name=$1 store=$2 listen=$3 cpu=$4 dir="$TMP/$1"
    mkdir -p "$dir"
    NODE_PORT=$(free_port)
    local admin_port
    admin_port=$(free_port)
    cat >"$dir/ficus.toml" <<EOF
store = "$store"
[[listener]]
bind = "127.0.0.1:$NODE_PORT"
[admin]
bind = "127.0.0.1:$admin_port"
[node]
name = "$name"
[fleet]
listen = $listen
poll_interval = "$POLL_INTERVAL"
[access_log]
enabled = false
[upstream.legacy]
url = "http://127.0.0.1:$UPSTREAM_PORT"
[upstream.modern]
url = "http://127.0.0.1:$UPSTREAM_PORT"
[[route]]
name = "orders"
path_prefix = "/orders"
legacy = "legacy"
modern = "modern"
stage = "canary"
weight = 0
[default]
legacy = "legacy"
EOF
    FICUS_ADMIN_TOKEN=$TOKEN FICUS_WORKER_THREADS=1 taskset -c "$cpu" "$FICUS" run -c "$dir/ficus.toml" >"$dir/log" 2>&1 &
    NODE_PID=$!
    STARTED+=("$NODE_PID")
    NODE_ADMIN="http://127.0.0.1:$admin_port"
    local deadline=$((SECONDS + READY_TIMEOUT))
    until curl -fsS -o /dev/null --max-time 1 "$NODE_ADMIN/healthz" 2>/dev/null; do
        alive "$NODE_PID" "$dir/log" || die "node $name did not start"
        [ "$SECONDS" -lt "$deadline" ] || die "node $name not ready after ${READY_TIMEOUT}s"
        sleep 0.1
    done
}

# stop_all: every node stopped (SIGTERM), the schema dropped for a fresh start.
stop_nodes() {
    local pid
    for pid in "${NODE_PIDS[@]}"; do stop_pid "$pid"; done
    NODE_PIDS=()
    drop_schema
}

pct() { sort -g | awk -v q="$1" '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit } i = int(q * NR + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR; print v[i] }'; }

say "# fleet benchmark, $(date -u +%FT%TZ)"
say "ficus: $("$FICUS" --version); PostgreSQL: $(psql "$PG_URL" -Atc 'show server_version'); $(nproc) CPUs"
say "nodes: $NODES; changes: $CHANGES; poll_interval: $POLL_INTERVAL"
say

wants() { case " $PARTS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# ---------------------------------------------------------------- 1. propagation
declare -A P50 P99 MAX
wants propagation && for mode in notify poll; do
    listen=true
    [ "$mode" = poll ] && listen=false
    drop_schema
    NODE_PIDS=()
    ADMINS=()
    for ((n = 1; n <= NODES; n++)); do
        start_node "n$n" "${PG_URL}?schema=$SCHEMA" "$listen" "$LOAD_CPU"
        NODE_PIDS+=("$NODE_PID")
        ADMINS+=("$NODE_ADMIN")
    done
    sleep 2
    python3 "$HERE/conf/fleet_probe.py" "$TOKEN" "$CHANGES" "$TIMEOUT" "${ADMINS[@]}" >"$OUT_DIR/propagation-$mode.tsv" ||
        die "the $mode probe failed (logs in $TMP)"
    P50[$mode]=$(cut -f4 "$OUT_DIR/propagation-$mode.tsv" | pct 0.50)
    P99[$mode]=$(cut -f4 "$OUT_DIR/propagation-$mode.tsv" | pct 0.99)
    MAX[$mode]=$(cut -f4 "$OUT_DIR/propagation-$mode.tsv" | pct 1.0)
    stop_nodes
done
if wants propagation; then
    say "## Propagation: from the API's answer to every other node running the change (ms)"
    say
    say "| mode | pairs | p50 | p99 | max |"
    say "|---|---:|---:|---:|---:|"
    for mode in notify poll; do
        say "| $mode | $(wc -l <"$OUT_DIR/propagation-$mode.tsv") | ${P50[$mode]} | ${P99[$mode]} | ${MAX[$mode]} |"
    done
    say
fi

# ---------------------------------------------------------------- 2. idle cost
wants idle || wants request || exit 0
NODE_PIDS=()
for ((n = 1; n <= NODES; n++)); do
    start_node "n$n" "${PG_URL}?schema=$SCHEMA" true "$LOAD_CPU"
    NODE_PIDS+=("$NODE_PID")
done
start_node single "sqlite://$TMP/single.db" true "$LOAD_CPU"
SINGLE_PID=$NODE_PID
sleep 3
HZ=$(getconf CLK_TCK)
if wants idle; then
declare -A T0
for pid in "${NODE_PIDS[@]}" "$SINGLE_PID"; do T0[$pid]=$(tree_ticks "$pid" | cut -d' ' -f1); done
sleep "$IDLE_SECONDS"
say "## Idle cost: CPU per second with no traffic, over ${IDLE_SECONDS}s"
say
say "| node | store | CPU ms/s |"
say "|---|---|---:|"
n=0
for pid in "${NODE_PIDS[@]}"; do
    n=$((n + 1))
    t1=$(tree_ticks "$pid" | cut -d' ' -f1)
    say "| n$n | postgres ($NODES nodes) | $(awk -v a="${T0[$pid]}" -v b="$t1" -v hz="$HZ" -v s="$IDLE_SECONDS" 'BEGIN { printf "%.2f", (b - a) * 1000 / hz / s }') |"
done
t1=$(tree_ticks "$SINGLE_PID" | cut -d' ' -f1)
say "| single | sqlite | $(awk -v a="${T0[$SINGLE_PID]}" -v b="$t1" -v hz="$HZ" -v s="$IDLE_SECONDS" 'BEGIN { printf "%.2f", (b - a) * 1000 / hz / s }') |"
say
fi
wants request || exit 0

# ---------------------------------------------------------------- 3. request path
# The fleet's node n1 moves to PROXY_CPU for the load; the single node is already there.
stop_pid "$SINGLE_PID"
start_node single "sqlite://$TMP/single.db" true "$PROXY_CPU"
SINGLE_PID=$NODE_PID
SINGLE_PORT=$NODE_PORT
FLEET_PID=${NODE_PIDS[0]}
taskset -pc "$PROXY_CPU" "$FLEET_PID" >/dev/null
for t in /proc/"$FLEET_PID"/task/*; do taskset -pc "$PROXY_CPU" "${t##*/}" >/dev/null 2>&1; done
FLEET_PORT=$(awk -F'"' '/^bind = "127.0.0.1:/ { split($2, a, ":"); print a[2]; exit }' "$TMP/n1/ficus.toml")
# us_per_request PID PORT: one wrk run; prints CPU microseconds per request of PID.
us_per_request() {
    local pid=$1 port=$2 t0 t1 reqs
    taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"$WARMUP"s "http://127.0.0.1:$port/" >/dev/null 2>&1
    t0=$(tree_ticks "$pid" | cut -d' ' -f1)
    reqs=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"$DURATION"s "http://127.0.0.1:$port/" 2>/dev/null |
        awk '/requests in/ { print $1 }')
    t1=$(tree_ticks "$pid" | cut -d' ' -f1)
    awk -v a="$t0" -v b="$t1" -v hz="$HZ" -v r="${reqs:-0}" 'BEGIN { if (r == 0) print "nan"; else printf "%.3f", (b - a) * 1e6 / hz / r }'
}
: >"$OUT_DIR/request-cpu.tsv"
for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then
        f=$(us_per_request "$FLEET_PID" "$FLEET_PORT")
        s=$(us_per_request "$SINGLE_PID" "$SINGLE_PORT")
    else
        s=$(us_per_request "$SINGLE_PID" "$SINGLE_PORT")
        f=$(us_per_request "$FLEET_PID" "$FLEET_PORT")
    fi
    printf '%s\t%s\t%s\n' "$r" "$f" "$s" >>"$OUT_DIR/request-cpu.tsv"
done
ratio_stats=$(awk '{ print $2 / $3 }' "$OUT_DIR/request-cpu.tsv" | sort -g | awk '
    { v[NR] = $1 }
    END {
        n = NR; if (n == 0) exit
        med = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
        # The distribution-free 95 % interval of the median (sign test), as bench/proxy.sh:
        # the k-th smallest to the k-th largest, k the largest with
        # P(Binomial(n, 1/2) < k) <= 0.025 (none under 6 rounds).
        k = 0; term = 0.5 ^ n; cum = term
        while (cum <= 0.025) { k++; term = term * (n - k + 1) / k; cum += term }
        if (k > 0) printf "%.3f (%.3f-%.3f)", med, v[k], v[n + 1 - k]
        else printf "%.3f (under 6 rounds: no interval)", med
    }')
say "## Request path: CPU per proxied GET, a node of the fleet against one alone on SQLite"
say
say "| | fleet node (us/req) | single node (us/req) | ratio (median, 95 % interval) |"
say "|---|---:|---:|---:|"
say "| $ROUNDS rounds x ${DURATION}s, $CONNS conns | $(cut -f2 "$OUT_DIR/request-cpu.tsv" | median) | $(cut -f3 "$OUT_DIR/request-cpu.tsv" | median) | $ratio_stats |"
say
say "raw results in $OUT_DIR"
