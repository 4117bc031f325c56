#!/usr/bin/env bash
# Response times of the admin console's pages at scale: fills a fresh database with GUNS
# GUNs (10 tuf_files rows each: root v1, targets/snapshot/timestamp v1-3; 8 expiry_inventory
# rows; 3 changefeed rows; one GUN on the first page with 20,000 extra timestamp versions),
# starts our notary-server on it (local signing, admin listener with the test PKI), and
# times REQUESTS requests per page over one keep-alive connection with curl: p50 and p99.
# It also reports the mean time of the expiry metrics' refresh (one grouped query of the
# inventory, every second here) from the server's own histogram.
#
# Usage: scripts/bench-console.sh [sqlite|mysql|both] [GUNS] [REQUESTS]   (as root; needs
#        the packages tests/harness/install.sh installs; mysql starts MariaDB through
#        start-mariadb.sh when it is not running, and leaves it as it found it). Binds
#        127.0.0.1:24755 (public) and 24756 (admin); stops what it starts by PID on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
WHICH="${1:-both}"; GUNS="${2:-100000}"; REQUESTS="${3:-200}"
cargo build --release --locked -q -p notary-server
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
W="$(mktemp -d)"
server_pid=""
started_mariadb=0
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    if [ "$started_mariadb" = 1 ]; then
        kill "$(cat /run/mysqld/mysqld.pid)" 2>/dev/null || true
    fi
    rm -rf "$W"
}
trap cleanup EXIT
"$ROOT/certs/make-pki.sh" "$W/certs" >/dev/null

# GUN i's name: four registries, so prefixes select a quarter or less.
SQLITE_GUN="(CASE i % 4 WHEN 0 THEN 'docker.io/library' WHEN 1 THEN 'quay.io/team' WHEN 2 THEN 'ghcr.io/org' ELSE 'registry.example.com/proj' END) || printf('/app-%06d', i)"
MYSQL_GUN="CONCAT(ELT(i % 4 + 1, 'docker.io/library', 'quay.io/team', 'ghcr.io/org', 'registry.example.com/proj'), '/app-', LPAD(i, 6, '0'))"
ROLE_VERSIONS="SELECT 'root' AS role, 1 AS version UNION ALL SELECT 'targets', 1 UNION ALL SELECT 'targets', 2
    UNION ALL SELECT 'targets', 3 UNION ALL SELECT 'snapshot', 1 UNION ALL SELECT 'snapshot', 2
    UNION ALL SELECT 'snapshot', 3 UNION ALL SELECT 'timestamp', 1 UNION ALL SELECT 'timestamp', 2
    UNION ALL SELECT 'timestamp', 3"
# (role, kind, days from now; NULL: no certificate): timestamps spread from 5 days expired
# to 55 days ahead, the rest years ahead.
INVENTORY="SELECT 'root' AS role, 'metadata' AS kind, 3650 AS days UNION ALL SELECT 'root', 'certificate', 3650
    UNION ALL SELECT 'targets', 'metadata', 1095 UNION ALL SELECT 'targets', 'certificate', NULL
    UNION ALL SELECT 'snapshot', 'metadata', 1095 UNION ALL SELECT 'snapshot', 'certificate', NULL
    UNION ALL SELECT 'timestamp', 'metadata', -1 UNION ALL SELECT 'timestamp', 'certificate', NULL"

fill_sqlite() { # DB
    sqlite3 "$1" <<SQL
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $GUNS - 1)
INSERT INTO tuf_files (created_at, updated_at, gun, role, version, data, sha256)
SELECT datetime('now'), datetime('now'), $SQLITE_GUN, rv.role, rv.version, X'7B7D', lower(hex(randomblob(32)))
FROM n, ($ROLE_VERSIONS) rv;
WITH RECURSIVE v(version) AS (SELECT 4 UNION ALL SELECT version + 1 FROM v WHERE version < 20003)
INSERT INTO tuf_files (created_at, updated_at, gun, role, version, data, sha256)
SELECT datetime('now'), datetime('now'), 'docker.io/library/app-000000', 'timestamp', version, X'7B7D', NULL FROM v;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $GUNS - 1)
INSERT INTO expiry_inventory (gun, role, kind, key_id, subject, expires, version)
SELECT $SQLITE_GUN, inv.role, inv.kind, '', '',
    CASE WHEN inv.days IS NULL THEN NULL
         WHEN inv.days < 0 THEN datetime('now', printf('%+d days', (i * 7) % 60 - 5))
         ELSE datetime('now', printf('+%d days', inv.days)) END, 3
FROM n, ($INVENTORY) inv;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $GUNS - 1),
     v(version) AS (SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3)
INSERT INTO changefeed (created_at, gun, version, sha256, category)
SELECT datetime('now'), $SQLITE_GUN, version, lower(hex(randomblob(32))), 'update' FROM v, n ORDER BY version, i;
COMMIT;
ANALYZE;
SQL
}

fill_mysql() { # DB
    mariadb -uroot "$1" <<SQL
INSERT INTO tuf_files (created_at, updated_at, gun, role, version, data, sha256)
SELECT NOW(), NOW(), $MYSQL_GUN, rv.role, rv.version, '{}', SHA2(CONCAT(i, rv.role, rv.version), 256)
FROM (SELECT CAST(seq AS SIGNED) AS i FROM seq_0_to_$((GUNS - 1))) n, ($ROLE_VERSIONS) rv;
INSERT INTO tuf_files (created_at, updated_at, gun, role, version, data, sha256)
SELECT NOW(), NOW(), 'docker.io/library/app-000000', 'timestamp', seq, '{}', NULL FROM seq_4_to_20003;
INSERT INTO expiry_inventory (gun, role, kind, key_id, subject, expires, version)
SELECT $MYSQL_GUN, inv.role, inv.kind, '', '',
    CASE WHEN inv.days IS NULL THEN NULL
         WHEN inv.days < 0 THEN UTC_TIMESTAMP() + INTERVAL ((i * 7) % 60 - 5) DAY
         ELSE UTC_TIMESTAMP() + INTERVAL inv.days DAY END, 3
FROM (SELECT CAST(seq AS SIGNED) AS i FROM seq_0_to_$((GUNS - 1))) n, ($INVENTORY) inv;
INSERT INTO changefeed (created_at, gun, version, sha256, category)
SELECT NOW(), $MYSQL_GUN, v.seq, SHA2(CONCAT(i, v.seq), 256), 'update'
FROM seq_1_to_3 v, (SELECT seq AS i FROM seq_0_to_$((GUNS - 1))) n ORDER BY v.seq, i;
ANALYZE TABLE tuf_files, expiry_inventory, changefeed;
SQL
}

start_server() { # STORAGE_JSON
    cat >"$W/server.json" <<JSON
{"server": {"http_addr": "127.0.0.1:24755", "tls_cert_file": "certs/notary-server.crt", "tls_key_file": "certs/notary-server.key"},
 "trust_service": {"type": "local"},
 "logging": {"level": "warn"},
 "storage": $1,
 "admin": {"http_addr": "127.0.0.1:24756", "client_ca_file": "certs/root-ca.crt"},
 "expiry": {"resign_interval_seconds": 0, "metrics_interval_seconds": 1}}
JSON
    # -migrate: creates the tables on MySQL (SQLite always migrates).
    "$BIN/notary-server" -config "$W/server.json" -migrate </dev/null >>"$W/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 120); do
        curl -fsS -o /dev/null --cacert "$W/certs/root-ca.crt" https://127.0.0.1:24755/_notary_server/health 2>/dev/null && return 0
        kill -0 "$server_pid" 2>/dev/null || { tail -20 "$W/server.log"; exit 1; }
        sleep 0.25
    done
    echo "server did not come up"; tail -20 "$W/server.log"; exit 1
}

stop_server() {
    kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
}

measure() { # LABEL
    local base="https://127.0.0.1:24756/_notary_server/admin/console/"
    local -a pages=(
        "first page|"
        "search q=quay.io/team/app-05 (2,500 hits)|?q=quay.io%2Fteam%2Fapp-05"
        "search with no hit|?q=nothing.example%2F"
        "deep page after=quay.io/team/app-099001|?after=quay.io%2Fteam%2Fapp-099001"
        "expiring (default 30 days, 500 shown)|expiring"
        "changes, newest|changes"
    )
    echo "## $1: $GUNS GUNs, $REQUESTS requests per page over one connection"
    printf '%-44s %9s %9s %9s\n' page "p50 ms" "p99 ms" "KB"
    for entry in "${pages[@]}"; do
        local label="${entry%%|*}" path="${entry#*|}" urls=()
        for _ in $(seq 1 "$REQUESTS"); do urls+=(-o /dev/null "$base$path"); done
        curl -sS --cacert "$W/certs/root-ca.crt" --cert "$W/certs/notary-server-client.crt" \
            --key "$W/certs/notary-server-client.key" \
            -w '%{http_code} %{time_total} %{size_download}\n' "${urls[@]}" >"$W/times"
        if grep -qv '^200 ' "$W/times"; then echo "$label: not 200: $(sort -u "$W/times" | head -3)"; exit 1; fi
        awk '{print $2 * 1000, $3}' "$W/times" | sort -n | awk -v label="$label" '
            { t[NR] = $1; kb = $2 / 1024 }
            END { printf "%-44s %9.2f %9.2f %9.1f\n", label, t[int(NR * 0.5 + 0.5)], t[int(NR * 0.99 + 0.5)], kb }'
    done
    curl -sS --cacert "$W/certs/root-ca.crt" https://127.0.0.1:24755/metrics |
        awk '/^notary_server_expiry_refresh_duration_seconds_sum/ { s = $2 }
             /^notary_server_expiry_refresh_duration_seconds_count/ { n = $2 }
             END { if (n > 0) printf "expiry metrics refresh: %d runs, mean %.2f ms\n", n, s / n * 1000 }'
}

if [ "$WHICH" = sqlite ] || [ "$WHICH" = both ]; then
    start_server "{\"backend\": \"sqlite3\", \"db_url\": \"$W/console.db\"}"
    stop_server # the server ran its migrations
    fill_sqlite "$W/console.db"
    start_server "{\"backend\": \"sqlite3\", \"db_url\": \"$W/console.db\"}"
    measure SQLite
    stop_server
fi
if [ "$WHICH" = mysql ] || [ "$WHICH" = both ]; then
    if ! mariadb -uroot -e 'SELECT 1' >/dev/null 2>&1; then
        "$ROOT/tests/harness/start-mariadb.sh" >/dev/null
        started_mariadb=1
    fi
    mariadb -uroot <<'SQL'
DROP DATABASE IF EXISTS bench_console;
CREATE DATABASE bench_console;
CREATE USER IF NOT EXISTS 'bench_console'@'127.0.0.1' IDENTIFIED BY 'bench_console_pw';
GRANT ALL PRIVILEGES ON bench_console.* TO 'bench_console'@'127.0.0.1';
SQL
    dsn="bench_console:bench_console_pw@tcp(127.0.0.1:3306)/bench_console?parseTime=True"
    start_server "{\"backend\": \"mysql\", \"db_url\": \"$dsn\"}"
    stop_server
    fill_mysql bench_console
    start_server "{\"backend\": \"mysql\", \"db_url\": \"$dsn\"}"
    measure MariaDB
    stop_server
    mariadb -uroot -e 'DROP DATABASE bench_console'
fi
