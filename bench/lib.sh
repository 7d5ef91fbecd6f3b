# Helpers shared by the benchmark scripts (proxy.sh, protect.sh, shadow.sh, rollback.sh).
# Sourced, not run. The caller sets `set -uo pipefail`, and before calling these:
#   TMP           scratch directory, removed by cleanup
#   STARTED=()    pids that cleanup stops
#   READY_TIMEOUT seconds wait_ready waits
# Everything here talks to 127.0.0.1 only.

BENCH_NAME=${BENCH_NAME:-$(basename "$0")}

say() { printf '%s\n' "$*"; }
warn() { printf '%s: %s\n' "$BENCH_NAME" "$*" >&2; }
die() {
    warn "$*"
    exit 1
}

# stop_pid PID: TERM, up to 5 s to go, then KILL.
stop_pid() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

# The EXIT trap's work: every started process stopped, the scratch directory gone.
cleanup() {
    local pid
    for pid in "${STARTED[@]}"; do stop_pid "$pid"; done
    rm -rf "$TMP"
}

# 1 KB (1024 bytes) JSON payload. No ', $, &, | or \ in it (it is inlined
# into the nginx config by a template substitution).
make_payload() {
    local s='{"status":"ok","source":"legacy","items":[' i item
    for ((i = 1; i <= 8; i++)); do
        item=$(printf '{"id":%d,"sku":"SKU-%05d","name":"item number %d","price_cents":%d,"in_stock":true,"tags":["bench","json"]}' \
            "$i" "$((i * 7919))" "$i" "$((i * 1250 + 99))")
        [ "$i" -gt 1 ] && s+=","
        s+=$item
    done
    s+='],"pad":"'
    local closing='"}'
    local need=$((1024 - ${#s} - ${#closing}))
    [ "$need" -ge 0 ] || die "payload items too long"
    s+=$(head -c "$need" /dev/zero | tr '\0' 'x')
    s+=$closing
    printf '%s' "$s"
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# alive PID LOG: true while PID runs; otherwise says so, with the tail of its log.
alive() {
    kill -0 "$1" 2>/dev/null && return 0
    warn "process $1 exited during start-up; log tail:"
    tail -n 20 "$2" >&2
    return 1
}

# wait_ready PORT PID LOG [MAX_TIME]: until GET / answers 200 with the 1 KB body (each try
# given MAX_TIME seconds, default 1), for up to READY_TIMEOUT seconds.
wait_ready() {
    local port=$1 pid=$2 logf=$3 max=${4:-1} deadline size
    deadline=$((SECONDS + READY_TIMEOUT))
    while [ "$SECONDS" -lt "$deadline" ]; do
        alive "$pid" "$logf" || return 1
        size=$(curl -fsS -o /dev/null -w '%{size_download}' --max-time "$max" "http://127.0.0.1:$port/" 2>/dev/null) &&
            {
                [ "$size" = 1024 ] && return 0
                warn "port $port answered with $size bytes, expected 1024"
                return 1
            }
        sleep 0.1
    done
    warn "port $port not ready after ${READY_TIMEOUT}s; log tail:"
    tail -n 20 "$logf" >&2
    return 1
}

# tree_ticks PID: CPU ticks of PID and all its descendants (nginx workers), as
# "utime+stime utime".
tree_ticks() {
    local root=$1 f rest pid ppid total=0 user=0 changed=1
    local -A parent ticks uticks in_tree=(["$root"]=1)
    local -a fields
    for f in /proc/[0-9]*/stat; do
        { read -r rest <"$f"; } 2>/dev/null || continue
        pid=${rest%% *}
        rest=${rest##*) }
        read -r -a fields <<<"$rest"
        ppid=${fields[1]}
        parent[$pid]=$ppid
        ticks[$pid]=$((fields[11] + fields[12]))
        uticks[$pid]=${fields[11]}
    done
    while [ "$changed" -eq 1 ]; do
        changed=0
        for pid in "${!parent[@]}"; do
            if [ -z "${in_tree[$pid]:-}" ] && [ -n "${in_tree[${parent[$pid]}]:-}" ]; then
                in_tree[$pid]=1
                changed=1
            fi
        done
    done
    for pid in "${!in_tree[@]}"; do
        total=$((total + ${ticks[$pid]:-0}))
        user=$((user + ${uticks[$pid]:-0}))
    done
    echo "$total $user"
}

# cpu_jiffies CPU...: "busy idle" jiffies of those CPUs together, from /proc/stat.
cpu_jiffies() {
    local name user nice sys idle iow irq sirq steal rest busy=0 free=0 c
    while read -r name user nice sys idle iow irq sirq steal rest; do
        for c in "$@"; do
            if [ "$name" = "cpu$c" ]; then
                busy=$((busy + user + nice + sys + irq + sirq + steal))
                free=$((free + idle + iow))
            fi
        done
    done </proc/stat
    echo "$busy $free"
}

# median: of the numbers on stdin, one per line; nothing for no input.
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) exit; if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
