#!/usr/bin/env bash
# SLO benchmark (issue 21): what evaluating SLOs costs, what it stores, and how fast a full
# outage pages, side by side with the Prometheus path.
#
# Parts (PARTS, default all three):
#   eval  The evaluator alone (crates/ficus-slo/benches/evaluate.rs, criterion): one round of
#         1,000 SLOs with 30 days of minute counts each, and the memory the histories hold.
#   tick  The leader's whole tick on a real store (crates/ficus-control/examples/slo_tick.rs),
#         on SQLite and on PostgreSQL: 1,000 routes with one SLO each (reread the last 15
#         minutes, evaluate, publish every evaluation in one transaction), the first tick of
#         a new leader that loads LOAD_ROUTES routes with 30 days of minutes, and the store
#         space per route per month (one scope, an availability and a latency SLO: a row in
#         sli_minutes and one in sli_slow_minutes per minute with traffic).
#   page  End to end with real traffic: `ficus run` (SQLite, one route, an availability SLO
#         of 99.9 % with the default burn-rate table) in front of one upstream, an open-loop
#         load of RATE req/s; after WARMUP seconds of good traffic the upstream answers 503 to
#         everything (t0). Measured: t0 to ficus's `slo.firing` page event, and t0 to the page
#         alert firing in a real Prometheus that scrapes ficus every SCRAPE and evaluates the
#         rule file `ficus slo rules` writes, with the `for: 2m` Pyrra gives its page alert
#         (Pyrra's rule groups are evaluated every 30 s: EVAL). Both read the same counters;
#         the difference is the pipeline.
#
# Environment (defaults):
#   PARTS="eval tick page"
#   ROUTES=1000 LOAD_ROUTES=20 TICKS=20     for tick
#   PG_URL=postgres://postgres@127.0.0.1:5432/test   for tick on PostgreSQL (empty: skipped)
#   RATE=50 WARMUP=300 MAX_WAIT=600 SCRAPE=15s EVAL=30s FOR=2m   for page
#   FICUS_BIN=target/release/ficus  PROMETHEUS=prometheus
#   PORT=18480 ADMIN_PORT=18481 UPSTREAM_PORT=18482 PROM_PORT=18490
#   OUT_DIR=bench/out/slo-<timestamp>
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
ROOT=$(dirname "$HERE")
CONF="$HERE/conf"

PARTS=${PARTS:-"eval tick page"}
ROUTES=${ROUTES:-1000}
LOAD_ROUTES=${LOAD_ROUTES:-20}
TICKS=${TICKS:-20}
PG_URL=${PG_URL-postgres://postgres@127.0.0.1:5432/test}
RATE=${RATE:-50}
WARMUP=${WARMUP:-300}
MAX_WAIT=${MAX_WAIT:-600}
SCRAPE=${SCRAPE:-15s}
EVAL=${EVAL:-30s}
FOR=${FOR:-2m}
FICUS_BIN=${FICUS_BIN:-target/release/ficus}
PROMETHEUS=${PROMETHEUS:-prometheus}
PORT=${PORT:-18480}
ADMIN_PORT=${ADMIN_PORT:-18481}
UPSTREAM_PORT=${UPSTREAM_PORT:-18482}
PROM_PORT=${PROM_PORT:-18490}
READY_TIMEOUT=${READY_TIMEOUT:-30}
STAMP=$(date +%Y%m%d-%H%M%S)
OUT_DIR=${OUT_DIR:-"$HERE/out/slo-$STAMP"}
TOKEN=bench-slo-token-0123456789abcdef

for v in ROUTES LOAD_ROUTES TICKS RATE WARMUP MAX_WAIT PORT ADMIN_PORT UPSTREAM_PORT PROM_PORT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer (got '${!v}')"
done
for p in $PARTS; do
    case "$p" in eval | tick | page) ;; *) die "unknown part '$p' (eval, tick, page)" ;; esac
done

TMP=$(mktemp -d /tmp/ficus-bench-slo.XXXXXX)
mkdir -p "$OUT_DIR" || die "cannot create $OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
STARTED=()
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cd "$ROOT" || die "no repository root"
{
    echo "date: $(date -u +%FT%TZ)"
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null)"
    echo "cpus: $(getconf _NPROCESSORS_ONLN)"
    uname -a
} >"$OUT_DIR/env.txt"

RESULTS="$OUT_DIR/results.txt"
: >"$RESULTS"
result() { say "$*" | tee -a "$RESULTS"; }

# ---------------------------------------------------------------- eval
part_eval() {
    say "== eval: 1,000 SLOs x 30 days of minutes (criterion)"
    cargo bench -q -p ficus-slo --bench evaluate -- --noplot >"$OUT_DIR/eval.txt" 2>&1 ||
        { tail -20 "$OUT_DIR/eval.txt"; die "cargo bench failed"; }
    local mem round one
    mem=$(grep -o 'histories hold [0-9.]* MB ([0-9]* bytes each)' "$OUT_DIR/eval.txt" | head -1)
    round=$(grep -A2 'evaluate_1000_slos_30_days' "$OUT_DIR/eval.txt" | grep -o 'time: *\[[^]]*\]' | head -1)
    one=$(grep -A2 'evaluate_one_slo_30_days' "$OUT_DIR/eval.txt" | grep -o 'time: *\[[^]]*\]' | head -1)
    result "eval  1000 SLOs, one round: $round"
    result "eval  one SLO:              $one"
    result "eval  memory: $mem"
}

# ---------------------------------------------------------------- tick
run_tick() {
    local name=$1 url=$2 routes=$3 ticks=$4 out
    out="$OUT_DIR/tick-$name-$routes.txt"
    say "== tick on $name ($routes routes, $LOAD_ROUTES with 30 days)"
    ROUTES=$routes LOAD_ROUTES=$LOAD_ROUTES TICKS=$ticks \
        "$ROOT/target/release/examples/slo_tick" "$url" >"$out" 2>"$out.log" ||
        { tail -20 "$out.log"; die "slo_tick on $name failed"; }
    [ "$routes" -gt 1 ] || return 0
    local k
    for k in first_tick_ms tick_p50_ms tick_max_ms status_json_bytes_per_slo seed_s rollup_s load_tick_ms; do
        result "tick  $name $k=$(grep "^$k=" "$out" | cut -d= -f2)"
    done
}

# The store holds LOAD_ROUTES route-months (one scope, an availability and a latency SLO)
# after a run with one route: bytes of the four SLI tables, per route-month.
per_route() { result "space $1: $(($2 / LOAD_ROUTES / 1024)) KiB per route-scope per 30 days (minutes for 3 days, hours before)"; }

part_tick() {
    say "== building the tick example (release)"
    cargo build -q --release -p ficus-control --example slo_tick || die "build failed"
    run_tick sqlite "sqlite://$TMP/tick.db" "$ROUTES" "$TICKS"
    run_tick sqlite "sqlite://$TMP/space.db" 1 1
    local bytes
    bytes=$(sqlite3 "$TMP/space.db" "SELECT SUM(pgsize) FROM dbstat WHERE name LIKE 'sli_%' OR name LIKE 'sqlite_autoindex_sli_%';")
    per_route sqlite "$bytes"
    if [ -n "$PG_URL" ] && command -v psql >/dev/null 2>&1; then
        local schema="ficus_bench_slo_$$" sep='?'
        case "$PG_URL" in *\?*) sep='&' ;; esac
        psql -q "$PG_URL" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1
        run_tick postgres "$PG_URL${sep}schema=$schema" "$ROUTES" "$TICKS"
        psql -q "$PG_URL" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1
        run_tick postgres "$PG_URL${sep}schema=$schema" 1 1
        # The rolled-up minutes' dead rows are space autovacuum hands back to new rows in a
        # running store; measure the live tables.
        psql -q "$PG_URL" -c "VACUUM FULL $schema.sli_minutes, $schema.sli_slow_minutes, $schema.sli_hours, $schema.sli_slow_hours" >/dev/null
        bytes=$(psql -qtA "$PG_URL" -c "SELECT SUM(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '$schema' AND c.relkind = 'r' AND c.relname LIKE 'sli_%'")
        per_route postgres "$bytes"
        psql -q "$PG_URL" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1
    fi
}

# ---------------------------------------------------------------- page
part_page() {
    say "== page: full outage after ${WARMUP}s of good traffic at $RATE req/s"
    case "$FICUS_BIN" in /*) ;; *) FICUS_BIN="$ROOT/$FICUS_BIN" ;; esac
    [ -x "$FICUS_BIN" ] || die "ficus: binary not built, run cargo build --release"
    command -v "$PROMETHEUS" >/dev/null 2>&1 || die "prometheus not found (apt-get install prometheus)"
    for p in "$PORT" "$ADMIN_PORT" "$UPSTREAM_PORT" "$PROM_PORT"; do
        port_busy "$p" && die "port $p is busy"
    done
    local dir="$TMP/page"
    mkdir -p "$dir"
    cat >"$dir/ficus.toml" <<EOF
store = "sqlite://$dir/state.db"
[[listener]]
bind = "127.0.0.1:$PORT"
[admin]
bind = "127.0.0.1:$ADMIN_PORT"
[access_log]
enabled = false
[upstream.legacy]
url = "http://127.0.0.1:$UPSTREAM_PORT"
[[route]]
name = "orders"
path_prefix = "/"
legacy = "legacy"
[[route.slo]]
name = "availability"
objective = 99.9
[default]
legacy = "legacy"
EOF
    # The rule file, with Pyrra's page delay.
    "$FICUS_BIN" slo rules -c "$dir/ficus.toml" >"$dir/rules.yml" || die "ficus slo rules failed"
    awk -v f="$FOR" '{ print } /^  - alert: FicusSLOPage$/ { print "    for: " f }' "$dir/rules.yml" >"$dir/rules-for.yml"
    cat >"$dir/prometheus.yml" <<EOF
global:
  scrape_interval: $SCRAPE
  evaluation_interval: $EVAL
rule_files: ["$dir/rules-for.yml"]
scrape_configs:
  - job_name: ficus
    authorization: { credentials: "$TOKEN" }
    static_configs: [{ targets: ["127.0.0.1:$ADMIN_PORT"] }]
EOF
    cp "$dir"/*.yml "$dir/ficus.toml" "$OUT_DIR/"
    python3 "$CONF/rollback-upstream.py" --listen "legacy=$UPSTREAM_PORT" >"$dir/upstream.log" 2>&1 &
    STARTED+=($!)
    FICUS_ADMIN_TOKEN=$TOKEN FICUS_LOG=warn "$FICUS_BIN" run -c "$dir/ficus.toml" >"$dir/ficus.log" 2>&1 &
    local ficus_pid=$!
    STARTED+=("$ficus_pid")
    "$PROMETHEUS" --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/tsdb" \
        --web.listen-address="127.0.0.1:$PROM_PORT" >"$dir/prometheus.log" 2>&1 &
    STARTED+=($!)
    local deadline=$((SECONDS + READY_TIMEOUT))
    until curl -fsS "http://127.0.0.1:$ADMIN_PORT/healthz" >/dev/null 2>&1 &&
        curl -fsS "http://127.0.0.1:$PROM_PORT/-/ready" >/dev/null 2>&1 &&
        curl -fsS "http://127.0.0.1:$UPSTREAM_PORT/_control/health" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || { tail "$dir"/*.log; die "not ready"; }
        sleep 0.2
    done
    local total=$((WARMUP + MAX_WAIT))
    python3 "$CONF/openloop.py" --port "$PORT" --path /orders/1 --rate "$RATE" \
        --duration "$total" >"$dir/load.txt" 2>&1 &
    local load_pid=$!
    STARTED+=("$load_pid")
    sleep "$WARMUP"
    local t0_ms
    t0_ms=$(curl -fsS -X POST "http://127.0.0.1:$UPSTREAM_PORT/_control/fail?rate=1.0" | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["at_ms"]))')
    say "t0: the upstream fails every request"
    local ficus_at="" prom_at="" now_ms
    deadline=$((SECONDS + MAX_WAIT))
    while [ "$SECONDS" -lt "$deadline" ] && { [ -z "$ficus_at" ] || [ -z "$prom_at" ]; }; do
        now_ms=$(date +%s%3N)
        if [ -z "$ficus_at" ]; then
            ficus_at=$(curl -fsS -H "authorization: Bearer $TOKEN" \
                "http://127.0.0.1:$ADMIN_PORT/api/v1/events?kind=slo.firing&limit=50" |
                python3 -c '
import json, sys
for e in json.load(sys.stdin):
    if e["data"].get("severity") == "page":
        print(e["at"])
        break
' 2>/dev/null)
            [ -n "$ficus_at" ] && say "ficus paged: $(((ficus_at - t0_ms)))ms after t0"
        fi
        if [ -z "$prom_at" ]; then
            if curl -fsS "http://127.0.0.1:$PROM_PORT/api/v1/alerts" |
                python3 -c 'import json,sys; a=json.load(sys.stdin)["data"]["alerts"]; sys.exit(0 if any(x["labels"].get("alertname")=="FicusSLOPage" and x["state"]=="firing" for x in a) else 1)'; then
                prom_at=$now_ms
                say "Prometheus paged: $((prom_at - t0_ms))ms after t0 (polled every second)"
            fi
        fi
        sleep 1
    done
    stop_pid "$load_pid"
    curl -fsS "http://127.0.0.1:$PROM_PORT/api/v1/alerts" >"$OUT_DIR/prometheus-alerts.json" 2>/dev/null
    curl -fsS -H "authorization: Bearer $TOKEN" "http://127.0.0.1:$ADMIN_PORT/api/v1/events?kind=slo.firing" >"$OUT_DIR/ficus-firing.json" 2>/dev/null
    result "page  ficus (evaluate_every 5s): $([ -n "$ficus_at" ] && echo "$((ficus_at - t0_ms)) ms" || echo "no page within ${MAX_WAIT}s")"
    result "page  Prometheus (scrape $SCRAPE, rules every $EVAL, for $FOR): $([ -n "$prom_at" ] && echo "$((prom_at - t0_ms)) ms" || echo "no page within ${MAX_WAIT}s")"
    result "page  after ${WARMUP}s of good traffic at $RATE req/s"
}

for p in $PARTS; do
    "part_$p"
done
say "results in $OUT_DIR/results.txt"
cat "$RESULTS"
