#!/usr/bin/env bash
# Stops the test cluster of start-postgres.sh: sends SIGINT (fast shutdown: open sessions are
# ended, then a clean checkpoint) to exactly the PID in the first line of
# PG_DATADIR/postmaster.pid, only if that PID still runs postgres, and waits up to PG_WAIT
# seconds; then SIGQUIT (immediate shutdown, recovery on the next start) and 10 s more.
# The data directory is kept.
#
# Usage: tests/harness/stop-postgres.sh        (as root)
# Env:   PG_DATADIR [/var/lib/notary-test-pg]  PG_WAIT [60]
set -euo pipefail
datadir="${PG_DATADIR:-/var/lib/notary-test-pg}"
wait_s="${PG_WAIT:-60}"
pidfile="$datadir/postmaster.pid"
say() { echo "stop-postgres: $*"; }

[ -f "$pidfile" ] || { say "no $pidfile: not running"; exit 0; }
pid="$(head -n 1 "$pidfile")"
if ! [[ "$pid" =~ ^[0-9]+$ ]] || ! kill -0 "$pid" 2>/dev/null; then
    say "pid $pid from $pidfile is not running"
    exit 0
fi
cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
if [[ "$cmd" != *postgres* ]]; then
    say "pid $pid now runs '$cmd', not postgres; left alone" >&2
    exit 1
fi
gone() { # SECONDS
    local deadline=$((SECONDS + $1))
    while [ "$SECONDS" -lt "$deadline" ]; do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.25
    done
    ! kill -0 "$pid" 2>/dev/null
}
kill -INT "$pid" 2>/dev/null || true
if gone "$wait_s"; then say "stopped postgres (pid $pid)"; exit 0; fi
say "postgres (pid $pid) still runs after ${wait_s}s; immediate shutdown (SIGQUIT)" >&2
kill -QUIT "$pid" 2>/dev/null || true
if gone 10; then say "stopped postgres (pid $pid, immediate)"; exit 0; fi
say "postgres (pid $pid) did not stop" >&2
exit 1
