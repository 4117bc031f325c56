#!/usr/bin/env bash
# Times the worst-case inputs of the security review (issue 13) against a notary-server:
# for each case a fresh server is started on SQLite (in-memory signing keys), one request is
# sent by `hostile-bench`, and the server's CPU time and peak RSS for it are printed. The
# server is killed after each case, so a case that keeps it busy cannot skew the next.
#
# Usage: scripts/bench-hostile.sh [SERVER_BIN]    (default: target/release/notary-server)
# Env:   CASES ["x5c many-parts zeros redirect changefeed"]  CAS [10]  TIMEOUT [120]
#        PORT [24481]
# A SERVER_BIN built from an older commit gives the "before" figures.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
cargo build --release --locked -q -p notary-server -p notary-bench --bin notary-server --bin hostile-bench
SERVER_BIN="${1:-$TARGET/release/notary-server}"
CASES="${CASES:-x5c many-parts zeros redirect changefeed}"
PORT="${PORT:-24481}"
WORK="$(mktemp -d /tmp/bench-hostile.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

certs/make-pki.sh "$WORK/certs" >/dev/null
# The token bundle: any root will do, the hostile chain never reaches it.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=hostile-bench bundle" -keyout "$WORK/bundle.key" -out "$WORK/bundle.crt" 2>/dev/null

config() { # $1 = auth JSON member or empty
    cat >"$WORK/server.json" <<JSON
{
  "server": { "http_addr": "127.0.0.1:${PORT}",
              "tls_cert_file": "certs/notary-server.crt", "tls_key_file": "certs/notary-server.key" },
  "trust_service": { "type": "local" },
  "logging": { "level": "error" },
  "storage": { "backend": "sqlite3", "db_url": "server.db" }${1}
}
JSON
}

echo "# hostile-bench against $SERVER_BIN ($(date -u +%FT%TZ))"
printf '%-11s %8s %10s %14s %14s  %s\n' case status wall_ms server_cpu_ms peak_rss_mib detail
for case in $CASES; do
    rm -f "$WORK/server.db"
    if [ "$case" = x5c ]; then
        config ', "auth": { "type": "token", "options": { "realm": "https://127.0.0.1:1/auth",
            "service": "hostile-bench-service", "issuer": "hostile-bench-issuer",
            "rootcertbundle": "bundle.crt" } }'
    else
        config ''
    fi
    "$SERVER_BIN" -config "$WORK/server.json" >"$WORK/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do
        curl -fsS -o /dev/null --max-time 1 --cacert "$WORK/certs/root-ca.crt" \
            "https://127.0.0.1:${PORT}/_notary_server/health" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
        sleep 0.1
    done
    "$TARGET/release/hostile-bench" --url "https://127.0.0.1:${PORT}" --ca "$WORK/certs/root-ca.crt" \
        --pid "$pid" --case "$case" --cas "${CAS:-10}" --timeout "${TIMEOUT:-120}" || true
    # SIGKILL: a server still busy with the input would hold up a graceful stop.
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
done
