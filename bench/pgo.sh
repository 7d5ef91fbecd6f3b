#!/usr/bin/env bash
# Builds ficus with profile-guided optimisation (PGO) into target/pgo/release/ficus, for
# production builds and for bench/proxy.sh (FICUS_BIN=target/pgo/release/ficus).
#
#   bash bench/pgo.sh
#   TRAIN_SECONDS=20 bash bench/pgo.sh
#
# 1. builds an instrumented ficus (target/pgo-gen, RUSTFLAGS=-Cprofile-generate);
# 2. trains it on loopback traffic through an all-legacy route to an nginx upstream that
#    answers 1 KB of JSON (the setup of bench/proxy.sh): wrk GETs, then wrk POSTs with a
#    1 KiB body, then GETs with 8 connections, TRAIN_SECONDS each; then stops it with
#    SIGTERM, which writes the profile;
# 3. merges the profile with the toolchain's llvm-profdata (rustup component llvm-tools,
#    added when missing) and builds again with -Cprofile-use.
#
# The profile only steers code layout, inlining and branch order; what the binary does is
# the same. The training traffic is the benchmark's kind of traffic: a build trained on it
# is tuned for plain proxying, the path every request takes. Two full release builds: about
# 20 minutes on 2 cores. Loopback only; bounded by TRAIN_SECONDS.
set -euo pipefail
cd "$(dirname "$0")/.."
HERE=bench
CONF=$HERE/conf
# shellcheck source=lib.sh
. "$HERE/lib.sh"

TRAIN_SECONDS=${TRAIN_SECONDS:-10}
UPSTREAM_PORT=${UPSTREAM_PORT:-18580}
PORT=${PORT:-18584}
READY_TIMEOUT=${READY_TIMEOUT:-20}
JOBS=${JOBS:-2}
[[ $TRAIN_SECONDS =~ ^[0-9]+$ ]] && [ "$TRAIN_SECONDS" -ge 1 ] || die "TRAIN_SECONDS must be a positive integer"

command -v nginx >/dev/null && command -v wrk >/dev/null || bash "$HERE/install.sh"
sysroot=$(rustc --print sysroot)
profdata=$(find "$sysroot" -name llvm-profdata -type f 2>/dev/null | head -n1)
if [ -z "$profdata" ]; then
    rustup component add llvm-tools >/dev/null || die "cannot add the llvm-tools component (llvm-profdata)"
    profdata=$(find "$sysroot" -name llvm-profdata -type f | head -n1)
fi
[ -x "$profdata" ] || die "llvm-profdata not found under $sysroot"

ROOT=$PWD
PROFILES=$ROOT/target/pgo-profiles
rm -rf "$PROFILES"
mkdir -p "$PROFILES"

say "pgo: building the instrumented binary (target/pgo-gen)"
RUSTFLAGS="-Cprofile-generate=$PROFILES" cargo build --release -j"$JOBS" -p ficus \
    --target-dir target/pgo-gen
# Build scripts were instrumented too and wrote their own profiles while they ran.
rm -f "$PROFILES"/*.profraw

TMP=$(mktemp -d /tmp/ficus-pgo.XXXXXX)
STARTED=()
trap cleanup EXIT
PAYLOAD=$(make_payload)
render() {
    local text
    text=$(<"$1")
    text=${text//@DIR@/$TMP}
    text=${text//@PORT@/$PORT}
    text=${text//@UPSTREAM_PORT@/$UPSTREAM_PORT}
    text=${text//@PAYLOAD@/$PAYLOAD}
    printf '%s\n' "$text" >"$2"
}
for p in "$UPSTREAM_PORT" "$PORT"; do
    ! port_busy "$p" || die "port $p is in use"
done
render "$CONF/nginx-upstream.conf" "$TMP/upstream.conf"
nginx -p "$TMP/" -e "$TMP/upstream-error.log" -c "$TMP/upstream.conf" >"$TMP/upstream.log" 2>&1 &
STARTED+=($!)
wait_ready "$UPSTREAM_PORT" "$!" "$TMP/upstream.log" || die "the upstream did not start"

render "$CONF/ficus.toml" "$TMP/ficus.toml"
FICUS_WORKER_THREADS=1 RUST_LOG=warn target/pgo-gen/release/ficus run -c "$TMP/ficus.toml" \
    >"$TMP/ficus.log" 2>&1 &
ficus=$!
STARTED+=("$ficus")
wait_ready "$PORT" "$ficus" "$TMP/ficus.log" || die "the instrumented ficus did not start"

say "pgo: training, ${TRAIN_SECONDS}s each: GETs (64 connections), 1 KiB POSTs, GETs (8 connections)"
wrk -t1 -c64 -d"${TRAIN_SECONDS}s" "http://127.0.0.1:$PORT/" | grep -E "Requests/sec|errors" || true
WRK_BODY=1024 wrk -t1 -c64 -d"${TRAIN_SECONDS}s" -s "$CONF/wrk-report.lua" "http://127.0.0.1:$PORT/" |
    grep -E "Requests/sec|errors" || true
wrk -t1 -c8 -d"${TRAIN_SECONDS}s" "http://127.0.0.1:$PORT/" | grep -E "Requests/sec|errors" || true
stop_pid "$ficus"
ls "$PROFILES"/*.profraw >/dev/null 2>&1 || die "no profile written (ficus log: $TMP/ficus.log)"

"$profdata" merge -o "$PROFILES/merged.profdata" "$PROFILES"/*.profraw
# Named by its content: cargo does not look into the file, but a new name changes RUSTFLAGS,
# so a new profile rebuilds everything and the same one rebuilds nothing.
sum=$(sha256sum "$PROFILES/merged.profdata" | cut -c1-16)
mkdir -p target/pgo
cp "$PROFILES/merged.profdata" "target/pgo/ficus-$sum.profdata"
say "pgo: building with the profile (target/pgo)"
RUSTFLAGS="-Cprofile-use=$ROOT/target/pgo/ficus-$sum.profdata" \
    cargo build --release -j"$JOBS" -p ficus --target-dir target/pgo
say "pgo: built target/pgo/release/ficus ($(target/pgo/release/ficus --version))"
