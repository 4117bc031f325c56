#!/usr/bin/env bash
# Stops the pair start-pair.sh started in WORKDIR: sends SIGTERM to exactly the PIDs in
# WORKDIR/server.pid and WORKDIR/signer.pid (only if that PID still runs a notary binary, so
# a reused PID is never hit), waits up to 10 s, then SIGKILL. MariaDB keeps running.
#
# Usage: tests/harness/stop-pair.sh WORKDIR
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 WORKDIR" >&2; exit 2; }
work="$1"

stop() { # NAME
    local file="$work/$1.pid" pid exe
    [ -f "$file" ] || { echo "stop-pair: $1: no PID file"; return 0; }
    pid="$(cat "$file")"
    rm -f "$file"
    if ! [[ "$pid" =~ ^[0-9]+$ ]] || ! kill -0 "$pid" 2>/dev/null; then
        echo "stop-pair: $1 (pid $pid) was not running"
        return 0
    fi
    exe="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
    if [[ "$exe" != *notary* ]]; then
        echo "stop-pair: pid $pid now runs '$exe', not a notary service; left alone" >&2
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 40); do
        kill -0 "$pid" 2>/dev/null || { echo "stop-pair: stopped $1 (pid $pid)"; return 0; }
        sleep 0.25
    done
    kill -KILL "$pid" 2>/dev/null || true
    echo "stop-pair: killed $1 (pid $pid) after SIGTERM was ignored"
}

stop server
stop signer
