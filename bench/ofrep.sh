#!/usr/bin/env bash
# OFREP benchmark (issue 22): flag evaluations per second on one core over HTTP on loopback,
# with p99, for a single flag, the bulk endpoint (every flag) and the bulk endpoint answered
# 304 (the client's ETag is current); and the time from a change (a config apply, and
# `ficus flag set`) to the first server-sent refetchEvaluation event. `ficus run` is pinned to PROXY_CPU with one worker
# (OFREP runs on the control runtime), wrk to LOAD_CPU.
#
# Environment (defaults):
#   FLAGS=50 DURATION=10 CONNECTIONS=32 USERS=10000 PROXY_CPU=0 LOAD_CPU=1
#   FICUS_BIN=target/release/ficus PORT=18580 ADMIN_PORT=18581 OUT_DIR=bench/out/ofrep-<ts>
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
ROOT=$(dirname "$HERE")
FLAGS=${FLAGS:-50}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
USERS=${USERS:-10000}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
FICUS_BIN=${FICUS_BIN:-target/release/ficus}
PORT=${PORT:-18580}
ADMIN_PORT=${ADMIN_PORT:-18581}
READY_TIMEOUT=${READY_TIMEOUT:-20}
OUT_DIR=${OUT_DIR:-"$HERE/out/ofrep-$(date +%Y%m%d-%H%M%S)"}
KEY=bench-ofrep-key-0123456789abcdef
case "$FICUS_BIN" in /*) ;; *) FICUS_BIN="$ROOT/$FICUS_BIN" ;; esac
[ -x "$FICUS_BIN" ] || die "ficus: binary not built, run cargo build --release"
command -v wrk >/dev/null 2>&1 || die "wrk not found (bench/install.sh installs it)"
TMP=$(mktemp -d /tmp/ficus-bench-ofrep.XXXXXX)
STARTED=()
trap cleanup EXIT
mkdir -p "$OUT_DIR"

{
    echo "store = \"sqlite://$TMP/state.db\""
    echo "[[listener]]"; echo "bind = \"127.0.0.1:0\""
    echo "[admin]"; echo "bind = \"127.0.0.1:$ADMIN_PORT\""
    echo "[access_log]"; echo "enabled = false"
    echo "[upstream.legacy]"; echo "url = \"http://127.0.0.1:9\""
    echo "[default]"; echo "legacy = \"legacy\""
    echo "[ofrep]"; echo "bind = \"127.0.0.1:$PORT\""; echo "keys_file = \"keys\""
    echo "per_second = 1000000000"; echo "burst = 1000000000"
    for ((i = 0; i < FLAGS; i++)); do
        case $((i % 3)) in
            0) printf '[[flag]]\nkey = "flag-%d"\nvariants = { on = true, off = false }\ndefault = "off"\n[[flag.rule]]\nwhen = [{ attribute = "plan", in = ["pro", "team"] }, { attribute = "appVersion", semver = ">= 2.1.0" }]\nvariant = "on"\n' "$i" ;;
            1) printf '[[flag]]\nkey = "flag-%d"\nvariants = { a = "alpha", b = "beta", c = "gamma" }\ndefault = "a"\n[[flag.rule]]\nsplit = { a = 10, b = 30, c = 60 }\n' "$i" ;;
            2) printf '[[flag]]\nkey = "flag-%d"\nvariants = { small = 10, large = 50 }\ndefault = "large"\nmetadata = { owner = "team-%d" }\n' "$i" "$i" ;;
        esac
    done
} >"$TMP/ficus.toml"
echo "$KEY" >"$TMP/keys"
cp "$TMP/ficus.toml" "$OUT_DIR/"

FICUS_WORKER_THREADS=1 FICUS_LOG=warn taskset -c "$PROXY_CPU" "$FICUS_BIN" run -c "$TMP/ficus.toml" >"$TMP/ficus.log" 2>&1 &
STARTED+=($!)
deadline=$((SECONDS + READY_TIMEOUT))
until curl -fsS "http://127.0.0.1:$ADMIN_PORT/healthz" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || { cat "$TMP/ficus.log"; die "ficus not ready"; }
    sleep 0.2
done

metric() { curl -fsS "http://127.0.0.1:$ADMIN_PORT/metrics" | awk -v m="$1" 'index($0, m) == 1 { s += $NF } END { print s + 0 }'; }

# run NAME PATH [ETAG] [USERS]
run() {
    local name=$1 path=$2 etag=${3:-} users=${4:-$USERS} line req dur p99 p50 rps
    line=$(OFREP_PATH=$path OFREP_KEY=$KEY OFREP_ETAG=$etag OFREP_USERS=$users \
        taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency \
        -s "$HERE/conf/ofrep.lua" "http://127.0.0.1:$PORT" 2>&1 | grep '^BENCH')
    echo "$name $line" >>"$OUT_DIR/raw.txt"
    req=$(sed 's/.*requests=\([0-9]*\).*/\1/' <<<"$line")
    dur=$(sed 's/.*duration_us=\([0-9]*\).*/\1/' <<<"$line")
    p50=$(sed 's/.*p50_us=\([0-9]*\).*/\1/' <<<"$line")
    p99=$(sed 's/.*p99_us=\([0-9]*\).*/\1/' <<<"$line")
    rps=$(awk -v r="$req" -v d="$dur" 'BEGIN { printf "%.0f", r / (d / 1e6) }')
    printf '%-22s %9s eval/s  p50 %6s us  p99 %6s us\n' "$name" "$rps" "$p50" "$p99" | tee -a "$OUT_DIR/results.txt"
}

run single "/ofrep/v1/evaluate/flags/flag-1"
run "bulk ($FLAGS flags)" "/ofrep/v1/evaluate/flags"
etag=$(curl -fsS -D - -o /dev/null -X POST -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    --data '{"context":{"targetingKey":"user-0","plan":"pro","appVersion":"2.3.1","country":"PT"}}' \
    "http://127.0.0.1:$PORT/ofrep/v1/evaluate/flags" | awk 'tolower($1) == "etag:" { sub(/\r$/, ""); print $2 }')
before=$(metric 'ficus_ofrep_refused_total{why="not_modified"}')
run "bulk, 304" "/ofrep/v1/evaluate/flags" "$etag" 1
after=$(metric 'ficus_ofrep_refused_total{why="not_modified"}')
total=$(sed -n 's/^bulk, 304 BENCH requests=\([0-9]*\).*/\1/p' "$OUT_DIR/raw.txt")
echo "bulk, 304: $((after - before)) of $total answered 304" | tee -a "$OUT_DIR/results.txt"

# Propagation: an event stream open, then a change of a flag, timed to the first
# refetchEvaluation the stream carries: a config apply through the admin API, and
# `ficus flag set` (the CLI process included), 5 times each.
python3 - "$PORT" "$KEY" "$ADMIN_PORT" "$TMP/ficus.toml" "$FICUS_BIN" <<'PY' | tee -a "$OUT_DIR/results.txt"
import json, socket, statistics, subprocess, sys, time, urllib.request
port, key, admin, cfg, ficus = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
token = open(cfg.rsplit("/", 1)[0] + "/.ficus-admin-token").read().strip()
s = socket.create_connection(("127.0.0.1", port))
s.sendall(f"GET /ofrep/v1/events?key={key} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
s.recv(65536)  # the head and the first comment
buf = b""
def wait_event(seen):
    global buf
    while buf.count(b"refetchEvaluation") <= seen:
        buf += s.recv(65536)
    return buf.count(b"refetchEvaluation")
seen = 0
original = open(cfg).read()
applies, sets = [], []
for i in range(5):
    text = original.replace('default = "off"', 'default = "on"' if i % 2 == 0 else 'default = "off"', 1)
    if i % 2 == 1:
        text = original + f"\n# bench {i}\n"
        text = text.replace('default = "large"', 'default = "small"', 1)
    req = urllib.request.Request(f"http://127.0.0.1:{admin}/api/v1/config/apply", method="POST",
        data=json.dumps({"text": text, "message": f"bench: change {i}"}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    t0 = time.monotonic()
    urllib.request.urlopen(req).read()
    seen = wait_event(seen)
    applies.append(1000 * (time.monotonic() - t0))
for i in range(5):
    variant = "b" if i % 2 == 0 else "c"
    t0 = time.monotonic()
    subprocess.run([ficus, "flag", "set", "flag-1", "--variant", variant, "-m", "bench",
                    "--admin", f"http://127.0.0.1:{admin}", "-c", cfg],
                   check=True, stdout=subprocess.DEVNULL)
    seen = wait_event(seen)
    sets.append(1000 * (time.monotonic() - t0))
fmt = lambda xs: f"median {statistics.median(xs):.1f} ms (min {min(xs):.1f}, max {max(xs):.1f})"
print(f"config apply to event:    {fmt(applies)}")
print(f"ficus flag set to event:  {fmt(sets)} (the CLI process included)")
PY
say "results in $OUT_DIR/results.txt"
