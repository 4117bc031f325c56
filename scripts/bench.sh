#!/usr/bin/env bash
# Benchmarks our notary-server + notary-signer against the Go reference (Debian's notary
# 0.7.0) on the same MariaDB, with nginx serving the same bytes over the same TLS
# certificate as a static-file baseline. Prints every figure and the ratios ours/Go and
# ours/nginx. A benchmark, not a test: nothing here asserts timings.
#
# Usage: scripts/bench.sh                 (as root; takes ~8 minutes)
#        scripts/bench.sh --scale [N]     also load N GUNs (default 100000) into our
#                                         database and compare GET/publish/changefeed
#                                         figures at 1,000 vs N GUNs (ours; ~5 more min)
# Also measures the cross-replica staleness bound of our cache: a second notary-server
# process on the same database (port OURS_REPLICA_PORT [24474]) reads while the first
# accepts publishes.
# Env:   BENCH_SECONDS [8]    seconds per measured phase
#        BENCH_WORK [/tmp/notary-bench]   certs, configs, logs, nginx root
#        BENCH_ARGS           extra arguments for `notary-bench compare`
#        OURS_PORT/OURS_SIGNER_PORT [24471/27971]  GO_PORT/GO_SIGNER_PORT [24472/27972]
#        NGINX_PORT [24473]
#        OURS_BIN_DIR         take notary-server/notary-signer from here instead of building
#                             them (e.g. to compare two builds)
#        BENCH_RESTART_GO [1]  restart the Go server when it crashes (0: leave it dead)
#        BENCH_LOG_LEVEL [info]  log level of both servers (info: the operators' level, one
#                             line per request); nginx then writes its access log too (to a
#                             file, buffered), else neither side logs requests
#        BENCH_BIG [100,10000,100000]  big repositories: tags per GUN (docker-style entries,
#                             sha256 only): GET targets.json (throughput, MB/s, server CPU
#                             per request, against nginx), publishing one more tag (p50, peak
#                             RSS) and the bytes a `notary lookup` moves; empty: skip
#        BENCH_POSTGRES [0]   1: also run ours on PostgreSQL (tests/harness/start-postgres.sh,
#                             127.0.0.1:5433; OURS_PG_PORT/OURS_PG_SIGNER_PORT [24475/27975])
#                             as column "ours-pg", with the ratio ours-pg/ours
# Needs: MariaDB and the Go notary (tests/harness/install.sh); installs wrk and nginx-light
#        itself when they are missing.
# Everything it starts is stopped by PID on exit; databases bench_{ours,go}_{server,signer}
# are recreated on every run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
HARNESS="$ROOT/tests/harness"
W="${BENCH_WORK:-/tmp/notary-bench}"
SECONDS_PER_PHASE="${BENCH_SECONDS:-8}"
OURS_PORT="${OURS_PORT:-24471}"
OURS_SIGNER_PORT="${OURS_SIGNER_PORT:-27971}"
GO_PORT="${GO_PORT:-24472}"
GO_SIGNER_PORT="${GO_SIGNER_PORT:-27972}"
NGINX_PORT="${NGINX_PORT:-24473}"
OURS_REPLICA_PORT="${OURS_REPLICA_PORT:-24474}"
OURS_PG_PORT="${OURS_PG_PORT:-24475}"
OURS_PG_SIGNER_PORT="${OURS_PG_SIGNER_PORT:-27975}"
BENCH_POSTGRES="${BENCH_POSTGRES:-0}"
BENCH_LOG_LEVEL="${BENCH_LOG_LEVEL:-info}"
BENCH_BIG="${BENCH_BIG-100,10000,100000}"
SCALE=0
if [ "${1:-}" = "--scale" ]; then
    SCALE="${2:-100000}"
fi

log() { echo "bench: $*" >&2; }

BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
if [ -n "${OURS_BIN_DIR:-}" ]; then
    log "building notary-bench (servers from $OURS_BIN_DIR)"
    cargo build --release --locked -q -p notary-bench
    OURS_BIN="$OURS_BIN_DIR"
else
    log "building release binaries"
    cargo build --release --locked -q -p notary-server -p notary-signer -p notary-bench
    OURS_BIN="$BIN"
fi

# The load generator and the static-file baseline (apt, once; skipped when present).
"$ROOT/scripts/ensure-packages.sh" wrk nginx-light >/dev/null
"$HARNESS/start-mariadb.sh" >/dev/null
mkdir -p "$W"
"$ROOT/certs/make-pki.sh" "$W/certs" >/dev/null
for side in ours go ours-pg; do
    mkdir -p "$W/$side/certs"
    cp "$W/certs/"* "$W/$side/certs/"
done

NGINX_PID=""
REPLICA_PID=""
WATCHDOG_PID=""
cleanup() {
    if [ -n "$WATCHDOG_PID" ]; then
        kill "$WATCHDOG_PID" 2>/dev/null || true
        wait "$WATCHDOG_PID" 2>/dev/null || true
    fi
    if [ -n "$REPLICA_PID" ] && kill -0 "$REPLICA_PID" 2>/dev/null; then
        kill "$REPLICA_PID" 2>/dev/null || true
    fi
    "$HARNESS/stop-pair.sh" "$W/ours" >/dev/null 2>&1 || true
    "$HARNESS/stop-pair.sh" "$W/go" >/dev/null 2>&1 || true
    "$HARNESS/stop-pair.sh" "$W/ours-pg" >/dev/null 2>&1 || true
    if [ -n "$NGINX_PID" ] && kill -0 "$NGINX_PID" 2>/dev/null; then
        kill "$NGINX_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT

# Both stacks log at BENCH_LOG_LEVEL: at info (the operators' level) every request costs a
# log line on both, and nginx writes its access log.
log "starting the Go reference on :$GO_PORT"
SERVER_PORT=$GO_PORT SIGNER_PORT=$GO_SIGNER_PORT SERVER_DB=bench_go_server \
    SIGNER_DB=bench_go_signer LOG_LEVEL="$BENCH_LOG_LEVEL" RESET_DB=1 \
    "$HARNESS/start-pair.sh" "$W/go" >/dev/null
# Debian's notary-server 0.7.0 can die under concurrent requests ("fatal error: concurrent
# map writes" in its metadata cache, server/storage/tuf_store.go). Unless BENCH_RESTART_GO=0,
# a watchdog restarts it at once so the later phases still measure it; requests caught by
# a crash show up in the "errors" rows, restarts are listed at the end.
: >"$W/go/restarts.log"
if [ "${BENCH_RESTART_GO:-1}" != 0 ]; then
    (
        seen=$(wc -l <"$W/go/server.log")
        while sleep 0.2; do
            if ! kill -0 "$(cat "$W/go/server.pid")" 2>/dev/null; then
                # Only what the dead process logged: the log is appended to across runs.
                reason=$(tail -n "+$((seen + 1))" "$W/go/server.log" |
                    grep -o 'fatal error: .*' | tail -n 1)
                echo "$(date -u +%T) Go notary-server died (${reason:-no fatal error logged});" \
                    "restarted" >>"$W/go/restarts.log"
                seen=$(wc -l <"$W/go/server.log")
                setsid /usr/bin/notary-server -config "$W/go/server-config.json" -logf logfmt \
                    >>"$W/go/server.log" 2>&1 </dev/null &
                echo $! >"$W/go/server.pid"
            fi
        done
    ) &
    WATCHDOG_PID=$!
fi
log "starting ours on :$OURS_PORT"
SERVER_PORT=$OURS_PORT SIGNER_PORT=$OURS_SIGNER_PORT SERVER_DB=bench_ours_server \
    SIGNER_DB=bench_ours_signer LOG_LEVEL="$BENCH_LOG_LEVEL" RESET_DB=1 \
    NOTARY_SERVER_BIN="$OURS_BIN/notary-server" NOTARY_SIGNER_BIN="$OURS_BIN/notary-signer" \
    "$HARNESS/start-pair.sh" "$W/ours" >/dev/null
PG_TARGET=()
if [ "$BENCH_POSTGRES" = 1 ]; then
    log "starting ours on PostgreSQL on :$OURS_PG_PORT"
    DB_BACKEND=postgres SERVER_PORT=$OURS_PG_PORT SIGNER_PORT=$OURS_PG_SIGNER_PORT \
        SERVER_DB=bench_ours_server SIGNER_DB=bench_ours_signer LOG_LEVEL="$BENCH_LOG_LEVEL" RESET_DB=1 \
        NOTARY_SERVER_BIN="$OURS_BIN/notary-server" NOTARY_SIGNER_BIN="$OURS_BIN/notary-signer" \
        "$HARNESS/start-pair.sh" "$W/ours-pg" >/dev/null
    PG_TARGET=(--target "ours-pg=https://127.0.0.1:$OURS_PG_PORT" --pids "$(
        echo "ours-pg=$(cat "$W/ours-pg/server.pid"):$(cat "$W/ours-pg/signer.pid")")")
fi

NGINX_ARGS=()
if [ "$BENCH_LOG_LEVEL" = info ] || [ "$BENCH_LOG_LEVEL" = debug ]; then
    # What nginx operators run: the combined access log, written through a buffer.
    NGINX_ACCESS_LOG="access_log $W/nginx/access.log combined buffer=64k flush=1s;"
else
    NGINX_ACCESS_LOG="access_log off;"
fi
if command -v nginx >/dev/null; then
    log "starting nginx on :$NGINX_PORT"
    mkdir -p "$W/nginx/www"
    chmod 755 "$W" "$W/nginx" "$W/nginx/www"
    cat >"$W/nginx/nginx.conf" <<EOF
worker_processes 2;
daemon on;
pid $W/nginx/nginx.pid;
error_log $W/nginx/error.log warn;
events { worker_connections 1024; }
http {
    $NGINX_ACCESS_LOG
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    open_file_cache max=1000 inactive=60s;
    types { }
    default_type application/json;
    server {
        listen 127.0.0.1:$NGINX_PORT ssl;
        ssl_certificate $W/certs/notary-server.crt;
        ssl_certificate_key $W/certs/notary-server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:1m;
        root $W/nginx/www;
    }
}
EOF
    rm -f "$W/nginx/nginx.pid"
    nginx -c "$W/nginx/nginx.conf" -p "$W/nginx"
    for _ in $(seq 1 40); do [ -s "$W/nginx/nginx.pid" ] && break; sleep 0.25; done
    NGINX_PID="$(cat "$W/nginx/nginx.pid")"
    NGINX_ARGS=(--nginx "https://127.0.0.1:$NGINX_PORT" --nginx-root "$W/nginx/www"
        --nginx-pid "$NGINX_PID")
else
    log "nginx not installed: no static-file baseline"
fi
command -v wrk >/dev/null || log "wrk not installed: GET throughput from our own client only"

BIG_ARGS=()
if [ -n "$BENCH_BIG" ]; then
    BIG_ARGS=(--big "$BENCH_BIG")
    if command -v notary >/dev/null; then
        BIG_ARGS+=(--notary-cli "$(command -v notary)")
    fi
fi
# PID files, not PIDs: the watchdog above restarts a crashed Go server under a new PID.
pids() { echo "$1=$W/$1/server.pid:$W/$1/signer.pid"; }
# shellcheck disable=SC2086
"$BIN/notary-bench" compare --ca "$W/certs/root-ca.crt" \
    --target "ours=https://127.0.0.1:$OURS_PORT" --target "go=https://127.0.0.1:$GO_PORT" \
    --pids "$(pids ours)" --pids "$(pids go)" --db-pid /run/mysqld/mysqld.pid "${PG_TARGET[@]}" "${NGINX_ARGS[@]}" "${BIG_ARGS[@]}" \
    --seconds "$SECONDS_PER_PHASE" ${BENCH_ARGS:-}

if [ -s "$W/go/restarts.log" ]; then
    echo
    echo "Go reference restarts during the run:"
    cat "$W/go/restarts.log"
fi

# A second server process of ours on the same database: how stale can it be?
sed "s/127.0.0.1:${OURS_PORT}/127.0.0.1:${OURS_REPLICA_PORT}/" "$W/ours/server-config.json" \
    >"$W/ours/replica-config.json"
setsid "$OURS_BIN/notary-server" -config "$W/ours/replica-config.json" \
    >>"$W/ours/replica.log" 2>&1 </dev/null &
REPLICA_PID=$!
for _ in $(seq 1 80); do
    curl -fsS --max-time 2 --cacert "$W/certs/root-ca.crt" \
        "https://127.0.0.1:$OURS_REPLICA_PORT/_notary_server/health" >/dev/null 2>&1 && break
    sleep 0.25
done
"$BIN/notary-bench" staleness --ca "$W/certs/root-ca.crt" \
    --writer "https://127.0.0.1:$OURS_PORT" --reader "https://127.0.0.1:$OURS_REPLICA_PORT"

if [ "$SCALE" != 0 ]; then
    DB_URL="mysql://notary_server:notary_server_pw@127.0.0.1:3306/bench_ours_server"
    "$BIN/notary-bench" scale --url "https://127.0.0.1:$OURS_PORT" \
        --ca "$W/certs/root-ca.crt" --db "$DB_URL" --guns "$SCALE" \
        --seconds "$SECONDS_PER_PHASE"
fi
