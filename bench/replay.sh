#!/usr/bin/env bash
# Record-and-replay benchmark (issue 20), on loopback, bounded in time:
#   1. replay throughput on one core, open loop, small GETs to an nginx upstream, side by side
#      with oha (`-q RATE --latency-correction`, the same open-loop pacing) at the same
#      rates; ficus's send lateness p99 (how late each request left, from its due time);
#   2. the highest rate ficus replay sustains on one core (achieved rate with everything due
#      at once, and the step rates it keeps within 1 % with lateness p99 under 1 ms);
#   3. recording's cost on the gateway: its CPU time per request with a route recording
#      100 % of its exchanges against the same route not recording (ROUNDS alternating
#      rounds, medians).
# Both load generators get the same CONNS connections (oha -c, ficus replay --max-in-flight,
# which bounds its keep-alive connections per target). Processes are pinned: the upstream (and the gateway, for 3) on TARGET_CPU, the load
# generator on LOAD_CPU.
#
# Environment (defaults):
#   RATES="1000 10000" STEPS="20000 40000 60000 80000 100000" DURATION=10 CONNS=64 ROUNDS=3
#   TARGET_CPU=0 LOAD_CPU=1 FICUS_BIN=target/release/ficus OHA=oha
#   UPSTREAM_PORT=18680 PROXY_PORT=18681 ADMIN_PORT=18682 OUT_DIR=bench/out/replay-<ts>
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
ROOT=$(dirname "$HERE")
RATES=${RATES:-"1000 10000"}
STEPS=${STEPS:-"20000 40000 60000 80000 100000"}
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-3}
TARGET_CPU=${TARGET_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
FICUS_BIN=${FICUS_BIN:-target/release/ficus}
OHA=${OHA:-oha}
UPSTREAM_PORT=${UPSTREAM_PORT:-18680}
PROXY_PORT=${PROXY_PORT:-18681}
ADMIN_PORT=${ADMIN_PORT:-18682}
READY_TIMEOUT=${READY_TIMEOUT:-20}
OUT_DIR=${OUT_DIR:-"$HERE/out/replay-$(date +%Y%m%d-%H%M%S)"}
case "$FICUS_BIN" in /*) ;; *) FICUS_BIN="$ROOT/$FICUS_BIN" ;; esac
[ -x "$FICUS_BIN" ] || die "ficus: binary not built, run cargo build --release"
command -v nginx >/dev/null 2>&1 || die "nginx not found (bench/install.sh installs it)"
command -v wrk >/dev/null 2>&1 || die "wrk not found (bench/install.sh installs it)"
HAVE_OHA=1
command -v "$OHA" >/dev/null 2>&1 || { HAVE_OHA=0; warn "oha not found: cargo install oha (its columns stay empty)"; }
TMP=$(mktemp -d /tmp/ficus-bench-replay.XXXXXX)
STARTED=()
trap cleanup EXIT
mkdir -p "$OUT_DIR" "$TMP/nginx"

# The upstream: nginx, one worker, a 1 KB JSON answer.
PAYLOAD=$(make_payload)
sed -e "s|@DIR@|$TMP/nginx|g" -e "s|@UPSTREAM_PORT@|$UPSTREAM_PORT|g" -e "s|@PAYLOAD@|$PAYLOAD|" \
    "$HERE/conf/nginx-upstream.conf" >"$TMP/nginx/nginx.conf"
taskset -c "$TARGET_CPU" nginx -c "$TMP/nginx/nginx.conf" -p "$TMP/nginx" >"$TMP/nginx.log" 2>&1 &
STARTED+=($!)
wait_ready "$UPSTREAM_PORT" "$!" "$TMP/nginx.log" || die "nginx did not start"
TARGET="http://127.0.0.1:$UPSTREAM_PORT"

# A recording of N small GETs 1 ms apart, made from a GoReplay capture (no body, 4 users).
make_recording() {
    local n=$1 out=$2
    python3 - "$n" "$TMP/cap.gor" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, "wb") as f:
    t = 1_700_000_000_000_000_000
    for i in range(n):
        f.write(f"1 {i:024x} {t + i * 1_000_000} 0\n".encode())
        f.write(f"GET /item/{i % 1000} HTTP/1.1\r\nHost: bench\r\nAccept: application/json\r\n\r\n".encode())
        f.write("\n🐵🙈🙉\n".encode())
        f.write(f"2 {i:024x} {t + i * 1_000_000 + 500_000} 500000\n".encode())
        f.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        f.write("\n🐵🙈🙉\n".encode())
PY
    rm -f "$out"
    "$FICUS_BIN" record import "$TMP/cap.gor" -o "$out" --route bench >/dev/null || die "record import failed"
}

# replay RATE N: ficus replay on LOAD_CPU at RATE for N requests; prints
# "achieved_rate lateness_p99_us latency_p99_us sent answered".
replay() {
    local rate=$1 file=$2 json
    json=$(taskset -c "$LOAD_CPU" "$FICUS_BIN" replay "$file" --target "$TARGET" --rate "${rate}/s" \
        --json --max-in-flight "$CONNS" 2>>"$OUT_DIR/replay.err")
    echo "$json" >>"$OUT_DIR/raw.jsonl"
    python3 -c '
import json, sys
r = json.loads(sys.argv[1])
print(round(r["rate_per_s"]), r["lateness"]["p99_us"], r["latency"]["p99_us"], r["sent"], r["answered"])
' "$json"
}

# oha_run RATE: oha on LOAD_CPU, open loop at RATE for DURATION; "achieved_rate p99_us".
oha_run() {
    local rate=$1 json
    [ "$HAVE_OHA" = 1 ] || { echo "- -"; return; }
    json=$(taskset -c "$LOAD_CPU" "$OHA" -z "${DURATION}s" -q "$rate" --latency-correction \
        --no-tui --output-format json -c "$CONNS" "$TARGET/item/1" 2>>"$OUT_DIR/oha.err") || { echo "- -"; return; }
    echo "$json" >>"$OUT_DIR/oha.jsonl"
    python3 -c '
import json, sys
r = json.loads(sys.argv[1])
s = r["summary"]
print(round(s["requestsPerSec"]), round(r["latencyPercentiles"]["p99"] * 1e6))
' "$json" 2>/dev/null || echo "- -"
}

{
    echo "load before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "== replay vs oha, open loop, one core each (ficus replay and oha on CPU $LOAD_CPU, nginx on CPU $TARGET_CPU), ${DURATION}s per rate"
    printf '%-10s | %-12s %-14s %-14s | %-12s %-12s\n' "rate/s" "ficus got/s" "lateness p99" "latency p99" "oha got/s" "oha p99"
} | tee "$OUT_DIR/results.txt"
for r in $RATES; do
    make_recording $((r * DURATION)) "$TMP/rec-$r.ficusrec"
    read -r got late lat sent answered < <(replay "$r" "$TMP/rec-$r.ficusrec")
    read -r ogot op99 < <(oha_run "$r")
    printf '%-10s | %-12s %-14s %-14s | %-12s %-12s\n' "$r" "$got" "${late} us" "${lat} us" "$ogot" "${op99} us" |
        tee -a "$OUT_DIR/results.txt"
done

{
    echo
    echo "== the highest rate ficus replay sustains on one core"
} | tee -a "$OUT_DIR/results.txt"
make_recording 300000 "$TMP/rec-max.ficusrec"
read -r got late lat sent answered < <(replay 10000000 "$TMP/rec-max.ficusrec")
echo "everything due at once: $sent sent, $answered answered, $got/s" | tee -a "$OUT_DIR/results.txt"
best=0
for r in $STEPS; do
    make_recording $((r * 5)) "$TMP/rec-step.ficusrec"
    read -r got late lat sent answered < <(replay "$r" "$TMP/rec-step.ficusrec")
    ok=$(python3 -c "print(1 if $got >= 0.99 * $r and $late < 1000 and $answered == $sent else 0)")
    printf 'step %-8s got %-8s lateness p99 %-8s us  %s\n' "$r" "$got" "$late" "$([ "$ok" = 1 ] && echo kept || echo missed)" |
        tee -a "$OUT_DIR/results.txt"
    [ "$ok" = 1 ] && best=$r
done
echo "highest step kept (>= 99 % of the rate, lateness p99 < 1 ms): $best/s" | tee -a "$OUT_DIR/results.txt"

# 3. Recording's cost on the gateway's CPU per request.
gateway() {
    local record=$1
    {
        echo "store = \"sqlite://$TMP/state-$record.db\""
        echo "[[listener]]"; echo "bind = \"127.0.0.1:$PROXY_PORT\""
        echo "[admin]"; echo "bind = \"127.0.0.1:$ADMIN_PORT\""
        echo "[access_log]"; echo "enabled = false"
        echo "[upstream.legacy]"; echo "url = \"$TARGET\""
        echo "[record]"; echo "dir = \"$TMP/recordings-$record\""
        echo "[[route]]"; echo "name = \"items\""; echo "path_prefix = \"/\""; echo "legacy = \"legacy\""
        echo "sticky = \"header:x-user\""
        if [ "$record" = on ]; then echo "[route.record]"; echo "sample = 100"; fi
        echo "[default]"; echo "legacy = \"legacy\""
    } >"$TMP/ficus-$record.toml"
    FICUS_WORKER_THREADS=1 FICUS_LOG=warn taskset -c "$TARGET_CPU" "$FICUS_BIN" run -c "$TMP/ficus-$record.toml" \
        >"$TMP/ficus-$record.log" 2>&1 &
    echo $!
}
{
    echo
    echo "== recording's cost on the gateway (ficus on CPU $TARGET_CPU with nginx, wrk on CPU $LOAD_CPU, ${DURATION}s, 16 connections)"
} | tee -a "$OUT_DIR/results.txt"
declare -A per
# Alternating rounds, the median of each mode: one run's CPU per request moves by 20 % from
# run to run on a shared 2-core VM.
for round in $(seq "$ROUNDS"); do
for mode in off on; do
    pid=$(gateway "$mode")
    STARTED+=("$pid")
    wait_ready "$PROXY_PORT" "$pid" "$TMP/ficus-$mode.log" || die "ficus ($mode) did not start"
    read -r t0 _ < <(tree_ticks "$pid")
    line=$(taskset -c "$LOAD_CPU" wrk -t1 -c16 -d"${DURATION}s" -H 'x-user: u1' "http://127.0.0.1:$PROXY_PORT/item/1" |
        awk '/requests in/ { print $1 }')
    read -r t1 _ < <(tree_ticks "$pid")
    hz=$(getconf CLK_TCK)
    us=$(python3 -c "print(round(($t1 - $t0) / $hz * 1e6 / $line, 2))")
    per[$mode]="${per[$mode]:-} $us"
    recorded=$(curl -fsS "http://127.0.0.1:$ADMIN_PORT/metrics" | awk '/^ficus_record_recorded_total/ { s += $NF } END { print s + 0 }')
    printf 'round %s, recording %-3s: %s requests, %s us of gateway CPU per request (%s recorded)\n' "$round" "$mode" "$line" "$us" "$recorded" |
        tee -a "$OUT_DIR/results.txt"
    stop_pid "$pid"
    rm -rf "$TMP/recordings-$mode" "$TMP/state-$mode.db"*
done
done
for mode in off on; do
    per[$mode]=$(python3 -c "import statistics, sys; print(statistics.median(float(x) for x in sys.argv[1:]))" ${per[$mode]})
done
echo "medians: off ${per[off]} us, on ${per[on]} us" | tee -a "$OUT_DIR/results.txt"
python3 -c "print(f'recording 100 %: +{(${per[on]} / ${per[off]} - 1) * 100:.1f} % CPU per request')" |
    tee -a "$OUT_DIR/results.txt"
echo "load after the run: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT_DIR/results.txt"
say "results in $OUT_DIR/results.txt"
