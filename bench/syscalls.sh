#!/usr/bin/env bash
# System calls per proxied request, counted by `perf stat` on the syscall tracepoints: the kernel half of bench/proxy.sh's
# CPU time is mostly the same loopback reads and writes for every proxy, but the number of
# calls (reads that find nothing, epoll waits, timer updates) is not.
#
#   bash bench/syscalls.sh                      # nginx, haproxy and ficus
#   N=50000 PROXIES="ficus nginx" bash bench/syscalls.sh
#   BODY=1024 bash bench/syscalls.sh            # POSTs with a 1,024-byte body instead of GETs
#
# Same setup as bench/proxy.sh: a 1 KB JSON upstream (nginx), each proxy with one worker and
# a keep-alive pool. After a 2,000-request warm-up, perf attaches to every thread of the
# proxy, ab sends N keep-alive requests over 64 connections, perf detaches. Prints a
# table of calls per request by syscall name. Loopback only; bounded by N.
set -euo pipefail
cd "$(dirname "$0")/.."
HERE=bench

N=${N:-20000}
CONNS=${CONNS:-64}
PROXIES=${PROXIES:-"nginx haproxy ficus"}
FICUS_BIN=${FICUS_BIN:-target/release/ficus}
UP_PORT=${UP_PORT:-18380}
PX_PORT=${PX_PORT:-18384}
BODY=${BODY:-0}

need() { command -v "$1" >/dev/null 2>&1; }
need perf || { apt-get update -qq && apt-get install -y -qq linux-perf >/dev/null; }
need ab || { apt-get update -qq && apt-get install -y -qq apache2-utils >/dev/null; }
need nginx || bash "$HERE/install.sh"

TMP=$(mktemp -d /tmp/ficus-sys.XXXXXX)
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

PAYLOAD=$(python3 -c 'import json; print(json.dumps({"id": 1, "items": ["x" * 60] * 14})[:1024])')
fill() {
    sed -e "s|@DIR@|$2|g" -e "s|@PORT@|$PX_PORT|g" -e "s|@UPSTREAM_PORT@|$UP_PORT|g" \
        -e "s|@PAYLOAD@|$PAYLOAD|g" "$1"
}

mkdir -p "$TMP/up"
fill "$HERE/conf/nginx-upstream.conf" "$TMP/up" >"$TMP/up/nginx.conf"
nginx -p "$TMP/up/" -e "$TMP/up/error.log" -c "$TMP/up/nginx.conf" &
PIDS+=($!)

wait_up() {
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0
        sleep 0.1
    done
    echo "port $1 did not answer" >&2
    return 1
}
wait_up "$UP_PORT"

# The process whose threads serve requests.
start_proxy() {
    local name=$1 dir="$TMP/$1"
    mkdir -p "$dir"
    case $name in
    nginx)
        fill "$HERE/conf/nginx-proxy.conf" "$dir" >"$dir/nginx.conf"
        nginx -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" >"$dir/log" 2>&1 &
        PIDS+=($!)
        ;;
    haproxy)
        fill "$HERE/conf/haproxy.cfg" "$dir" >"$dir/haproxy.cfg"
        haproxy -db -f "$dir/haproxy.cfg" >"$dir/log" 2>&1 &
        PIDS+=($!)
        ;;
    ficus)
        fill "$HERE/conf/ficus.toml" "$dir" >"$dir/ficus.toml"
        FICUS_WORKER_THREADS=1 RUST_LOG=warn "$FICUS_BIN" run -c "$dir/ficus.toml" >"$dir/log" 2>&1 &
        PIDS+=($!)
        ;;
    esac
    wait_up "$PX_PORT"
}

worker_pid() {
    case $1 in
    nginx) pgrep -f "nginx: worker process" | while read -r p; do
        [ "$(ps -o ppid= -p "$p" | tr -d ' ')" = "$(cat "$TMP/nginx/nginx.pid")" ] && echo "$p"
    done | head -n1 ;;
    *) echo "${PIDS[-1]}" ;;
    esac
}

stop_proxy() {
    local pid=${PIDS[-1]}
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset 'PIDS[-1]'
    sleep 0.5
}

# Tracepoints counted by `perf stat` (no slowdown, unlike strace, so the batching of events
# per epoll wait is what it is without a tracer).
CALLS=(read recvfrom recvmsg readv write sendto sendmsg writev epoll_wait epoll_pwait epoll_ctl
    futex getsockopt setsockopt accept4 close sched_yield)
EAGAIN=(read recvfrom recvmsg readv)
events() {
    local e=raw_syscalls:sys_enter
    for c in "${CALLS[@]}"; do e+=",syscalls:sys_enter_$c"; done
    echo "$e"
}

declare -A COUNT
for p in $PROXIES; do
    start_proxy "$p"
    ab -q -k -c "$CONNS" -n 2000 "${AB_ARGS[@]}" "http://127.0.0.1:$PX_PORT/" >/dev/null 2>&1
    wp=$(worker_pid "$p")
    args=(-x, -o "$TMP/$p.perf" -e "$(events)")
    for c in "${EAGAIN[@]}"; do args+=(-e "syscalls:sys_exit_$c" --filter 'ret == -11'); done
    perf stat "${args[@]}" -p "$wp" &
    spid=$!
    sleep 1
    ab -q -k -c "$CONNS" -n "$N" "${AB_ARGS[@]}" "http://127.0.0.1:$PX_PORT/" >"$TMP/$p.ab" 2>&1
    kill -INT "$spid"
    wait "$spid" 2>/dev/null || true
    failed=$(awk '/Failed requests/ {print $3}' "$TMP/$p.ab")
    [ "${failed:-1}" = 0 ] || { echo "$p: ab reported failed requests: ${failed:-?}" >&2; cat "$TMP/$p.ab" >&2; }
    # perf stat -x,: "count,unit,event,..."
    while IFS=, read -r count _ event _; do
        [[ $count =~ ^[0-9]+$ ]] || continue
        case $event in
        raw_syscalls:sys_enter) COUNT[$p,total]=$count ;;
        syscalls:sys_enter_*) COUNT[$p,${event#syscalls:sys_enter_}]=$count ;;
        syscalls:sys_exit_*) COUNT[$p,${event#syscalls:sys_exit_},err]=$count ;;
        esac
    done <"$TMP/$p.perf"
    stop_proxy
done

per() { awk -v c="$1" -v n="$N" 'BEGIN { printf "%.2f", c / n }'; }
printf '\n%s requests, %s keep-alive connections (ab); system calls per request, of which reads that found nothing (EAGAIN) in brackets\n\n' "$N" "$CONNS"
printf '| syscall |'
for p in $PROXIES; do printf ' %s |' "$p"; done
printf '\n|---|'
for p in $PROXIES; do printf -- '---:|'; done
printf '\n'
for name in "${CALLS[@]}"; do
    any=0
    for p in $PROXIES; do [ "${COUNT[$p,$name]:-0}" = 0 ] || any=1; done
    [ $any = 1 ] || continue
    printf '| %s |' "$name"
    for p in $PROXIES; do
        c=${COUNT[$p,$name]:-0}
        e=${COUNT[$p,$name,err]:-}
        if [ -n "$e" ] && [ "$c" != 0 ]; then
            printf ' %s (%s) |' "$(per "$c")" "$(per "$e")"
        else
            printf ' %s |' "$(per "$c")"
        fi
    done
    printf '\n'
done
printf '| **all system calls** |'
for p in $PROXIES; do printf ' **%s** |' "$(per "${COUNT[$p,total]:-0}")"; done
printf '\n'
