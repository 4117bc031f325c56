#!/usr/bin/env bash
# Starts one notary-server + notary-signer pair on MariaDB (default) or PostgreSQL
# (DB_BACKEND=postgres), with mutual TLS from the server to the signer. Any mix of binaries
# works (Go reference, ours, or one of each): both read the Go configuration format written
# here.
#
# Usage: tests/harness/start-pair.sh WORKDIR
#
# Into WORKDIR go: certs/ (certs/make-pki.sh of this repository), server-config.json,
# signer-config.json, server.log, signer.log, server.pid, signer.pid. Running it again on a
# WORKDIR whose pair is up does nothing. Stop with tests/harness/stop-pair.sh WORKDIR.
#
# Steps: MariaDB up (start-mariadb.sh) or PostgreSQL up (start-postgres.sh) -> PKI ->
# databases, users, Go schema -> configs -> signer (gRPC, client CA = test root CA) ->
# server (HTTPS) -> health check -> a request that makes the server fetch a key from the
# signer (proves the mTLS path).
#
# Environment (default in brackets):
#   NOTARY_SERVER_BIN [/usr/bin/notary-server]   NOTARY_SIGNER_BIN [/usr/bin/notary-signer]
#   SERVER_PORT [4443]   SIGNER_PORT [7899]       both bound to 127.0.0.1
#   SERVER_DB [notaryserver]   SIGNER_DB [notarysigner]
#   SERVER_DB_USER [notary_server]  SERVER_DB_PASS [notary_server_pw]
#   SIGNER_DB_USER [notary_signer]  SIGNER_DB_PASS [notary_signer_pw]
#   DB_BACKEND [mysql]   mysql (MariaDB) | postgres (the test cluster of start-postgres.sh:
#                        roles and databases are made through its unix socket; the configs
#                        get "backend": "postgres" and a postgres:// db_url)
#   DB_HOST [127.0.0.1]  DB_PORT [3306; postgres: PG_PORT, 5433]
#   PG_SSLMODE [disable] postgres only: sslmode of both db_urls (disable | require |
#                        verify-ca | verify-full); all but disable also get sslrootcert=
#                        WORKDIR/certs/postgres-ca.crt, a copy of PG_SSLROOTCERT
#                        [PG_DATADIR/tls/root-ca.crt, the CA of start-postgres.sh's cluster]
#   PG_PORT [DB_PORT or 5433]  PG_DATADIR [/var/lib/notary-test-pg]  (see start-postgres.sh)
#   RESET_DB [0]         1 = drop both databases first
#   SIGNER_ALIAS [passwordalias1]  SIGNER_PASSPHRASE [notary-signer-test-passphrase]
#                        the signer's default_alias; the passphrase is handed to the signer
#                        as NOTARY_SIGNER_<ALIAS in upper case>
#   KEY_ALGORITHM [ecdsa]   algorithm of server-managed keys (ecdsa | ed25519)
#   LOG_LEVEL [info]        LOG_FORMAT [logfmt]  (-logf of both services)
#   AUTH_TOKEN_REALM, AUTH_TOKEN_SERVICE, AUTH_TOKEN_ISSUER, AUTH_TOKEN_ROOTCERT
#                        all four set = the server requires Docker registry tokens
#                        (auth type "token"); unset = no auth
#   START_WAIT [60]      seconds to wait for each service
#   TRANSPARENCY_LOG [0] 1 = the server (ours) keeps a transparency log (checkpoint every
#                        200 ms, origin localhost/notary-log); Go's server ignores the section
#   ADMIN_PORT []        set: the server (ours) opens its admin listener on 127.0.0.1:ADMIN_PORT,
#                        client certificates from certs/root-ca.crt required (use
#                        certs/notary-server-client.crt); Go's server ignores the section
#   SERVER_EXTRA_JSON [] raw members appended to server-config.json's top-level object, e.g.
#                        '"expiry": {"resign_interval_seconds": 2}' (ours; Go ignores them)
#   SIGNER_PKCS11 [0]    1 = the signer keeps its keys in a fresh SoftHSM2 token made in
#                        WORKDIR/softhsm (label notary, PIN 1234; ours only: Go's signer has
#                        no PKCS#11 store)
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 WORKDIR" >&2; exit 2; }
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
mkdir -p "$1"
work="$(cd "$1" && pwd)"

: "${NOTARY_SERVER_BIN:=/usr/bin/notary-server}" "${NOTARY_SIGNER_BIN:=/usr/bin/notary-signer}"
: "${SERVER_PORT:=4443}" "${SIGNER_PORT:=7899}"
: "${SERVER_DB:=notaryserver}" "${SIGNER_DB:=notarysigner}"
: "${SERVER_DB_USER:=notary_server}" "${SERVER_DB_PASS:=notary_server_pw}"
: "${SIGNER_DB_USER:=notary_signer}" "${SIGNER_DB_PASS:=notary_signer_pw}"
: "${DB_BACKEND:=mysql}"
case "$DB_BACKEND" in
    mysql) : "${DB_PORT:=3306}" ;;
    postgres)
        : "${PG_PORT:=${DB_PORT:-5433}}" "${DB_PORT:=$PG_PORT}" "${PG_SSLMODE:=disable}"
        : "${PG_DATADIR:=/var/lib/notary-test-pg}"
        : "${PG_SSLROOTCERT:=$PG_DATADIR/tls/root-ca.crt}"
        export PG_PORT PG_DATADIR ;;
    *) echo "start-pair: DB_BACKEND='$DB_BACKEND' must be mysql or postgres" >&2; exit 1 ;;
esac
: "${DB_HOST:=127.0.0.1}" "${RESET_DB:=0}"
: "${SIGNER_ALIAS:=passwordalias1}" "${SIGNER_PASSPHRASE:=notary-signer-test-passphrase}"
: "${KEY_ALGORITHM:=ecdsa}" "${LOG_LEVEL:=info}" "${LOG_FORMAT:=logfmt}" "${START_WAIT:=60}"
: "${SIGNER_PKCS11:=0}" "${TRANSPARENCY_LOG:=0}" "${ADMIN_PORT:=}" "${SERVER_EXTRA_JSON:=}"
: "${AUTH_TOKEN_REALM:=}" "${AUTH_TOKEN_SERVICE:=}" "${AUTH_TOKEN_ISSUER:=}" "${AUTH_TOKEN_ROOTCERT:=}"

say() { echo "start-pair: $*"; }
die() { echo "start-pair: $*" >&2; exit 1; }

# Names and passwords end up inside SQL and DSNs unquoted: keep them plain.
for var in SERVER_DB SIGNER_DB SERVER_DB_USER SIGNER_DB_USER SIGNER_ALIAS; do
    [[ "${!var}" =~ ^[A-Za-z0-9_]+$ ]] || die "$var='${!var}' must match [A-Za-z0-9_]+"
done
for var in SERVER_DB_PASS SIGNER_DB_PASS; do
    [[ "${!var}" =~ ^[A-Za-z0-9_.-]+$ ]] || die "$var must match [A-Za-z0-9_.-]+"
done
for var in SERVER_PORT SIGNER_PORT DB_PORT START_WAIT; do
    [[ "${!var}" =~ ^[0-9]+$ ]] || die "$var must be a number"
done
if [ "$DB_BACKEND" = postgres ]; then
    [[ "$PG_SSLMODE" =~ ^(disable|require|verify-ca|verify-full)$ ]] ||
        die "PG_SSLMODE='$PG_SSLMODE' must be disable, require, verify-ca or verify-full"
fi

running() { # PIDFILE
    local pid
    [ -f "$1" ] || return 1
    pid="$(cat "$1")"
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if running "$work/server.pid" && running "$work/signer.pid"; then
    say "already up in $work (server pid $(cat "$work/server.pid"), signer pid $(cat "$work/signer.pid"))"
    exit 0
fi
if running "$work/server.pid" || running "$work/signer.pid"; then
    say "only one of the two services runs; stopping it to start both afresh"
    "$here/stop-pair.sh" "$work"
fi
for port in "$SERVER_PORT" "$SIGNER_PORT"; do
    listening "$port" && die "127.0.0.1:$port is already taken"
done
for bin in "$NOTARY_SERVER_BIN" "$NOTARY_SIGNER_BIN"; do
    [ -x "$bin" ] || die "$bin is not an executable (Go pair: tests/harness/install.sh; ours: cargo build --release)"
done

# PostgreSQL: roles and databases through the superuser's unix socket (pg-psql.sh), then
# the schema of Go's migrations/{server,signer}/postgresql, owned by the service roles.
setup_postgres() {
    pg_role_sql() { # USER PASS
        printf 'DO $$ BEGIN\n'
        printf "    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%s') THEN\n" "$1"
        printf '        CREATE ROLE "%s";\n    END IF;\nEND $$;\n' "$1"
        printf "ALTER ROLE \"%s\" LOGIN PASSWORD '%s';\n" "$1" "$2"
    }
    pg_db_sql() { # DB OWNER
        printf "SELECT 'CREATE DATABASE \"%s\" OWNER \"%s\"'\n" "$1" "$2"
        printf "    WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '%s')\\\\gexec\n" "$1"
        printf 'ALTER DATABASE "%s" OWNER TO "%s";\n' "$1" "$2"
    }
    pg_own_sql() { # OWNER TABLE...
        local owner="$1" table; shift
        for table in "$@"; do printf 'ALTER TABLE %s OWNER TO "%s";\n' "$table" "$owner"; done
        printf 'GRANT ALL ON ALL TABLES IN SCHEMA public TO "%s";\n' "$owner"
        printf 'GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO "%s";\n' "$owner"
    }
    say "postgres databases $SERVER_DB / $SIGNER_DB on $DB_HOST:$DB_PORT$( [ "$RESET_DB" = 1 ] && echo " (dropped first)")"
    {
        echo "SET client_min_messages = warning;"
        if [ "$RESET_DB" = 1 ]; then
            echo "DROP DATABASE IF EXISTS \"$SERVER_DB\" WITH (FORCE);"
            echo "DROP DATABASE IF EXISTS \"$SIGNER_DB\" WITH (FORCE);"
        fi
        pg_role_sql "$SERVER_DB_USER" "$SERVER_DB_PASS"
        pg_role_sql "$SIGNER_DB_USER" "$SIGNER_DB_PASS"
        pg_db_sql "$SERVER_DB" "$SERVER_DB_USER"
        pg_db_sql "$SIGNER_DB" "$SIGNER_DB_USER"
        echo "\\connect \"$SERVER_DB\""
        echo "SET client_min_messages = warning;"
        # notary-server: tuf_files (0001), change_category + changefeed (0002; its copy of
        # the existing timestamps into the changefeed runs only when it creates the table).
        cat <<'SQL'
CREATE TABLE IF NOT EXISTS "tuf_files" (
    "id" serial PRIMARY KEY,
    "created_at" timestamp NULL DEFAULT NULL,
    "updated_at" timestamp NULL DEFAULT NULL,
    "deleted_at" timestamp NULL DEFAULT NULL,
    "gun" varchar(255) NOT NULL,
    "role" varchar(255) NOT NULL,
    "version" integer NOT NULL,
    "data" bytea NOT NULL,
    "sha256" char(64) DEFAULT NULL,
    UNIQUE ("gun", "role", "version")
);
CREATE INDEX IF NOT EXISTS "tuf_files_sha256_idx" ON "tuf_files" ("sha256");
CREATE TABLE IF NOT EXISTS "change_category" (
    "category" varchar(20) PRIMARY KEY
);
INSERT INTO "change_category" VALUES ('update'), ('deletion') ON CONFLICT DO NOTHING;
DO $$
BEGIN
    IF to_regclass('public.changefeed') IS NULL THEN
        CREATE TABLE "changefeed" (
            "id" serial PRIMARY KEY,
            "created_at" timestamp DEFAULT CURRENT_TIMESTAMP,
            "gun" varchar(255) NOT NULL,
            "version" integer NOT NULL,
            "sha256" char(64) DEFAULT NULL,
            "category" varchar(20) NOT NULL DEFAULT 'update' REFERENCES "change_category"
        );
        INSERT INTO "changefeed" ("created_at", "gun", "version", "sha256")
            SELECT "created_at", "gun", "version", "sha256" FROM "tuf_files"
            WHERE "role" = 'timestamp' ORDER BY "created_at" ASC;
    END IF;
END
$$;
CREATE INDEX IF NOT EXISTS "idx_changefeed_gun" ON "changefeed" ("gun");
SQL
        pg_own_sql "$SERVER_DB_USER" tuf_files change_category changefeed
        echo "\\connect \"$SIGNER_DB\""
        echo "SET client_min_messages = warning;"
        # notary-signer: private_keys (0001; PostgreSQL has had gun, role, last_used from
        # the start).
        cat <<'SQL'
CREATE TABLE IF NOT EXISTS "private_keys" (
    "id" serial PRIMARY KEY,
    "created_at" timestamp NULL DEFAULT NULL,
    "updated_at" timestamp NULL DEFAULT NULL,
    "deleted_at" timestamp NULL DEFAULT NULL,
    "key_id" varchar(255) NOT NULL,
    "encryption_alg" varchar(255) NOT NULL,
    "keywrap_alg" varchar(255) NOT NULL,
    "algorithm" varchar(50) NOT NULL,
    "passphrase_alias" varchar(50) NOT NULL,
    "public" bytea NOT NULL,
    "private" bytea NOT NULL,
    "gun" varchar(255) NOT NULL,
    "role" varchar(255) NOT NULL,
    "last_used" timestamp NULL DEFAULT NULL,
    CONSTRAINT "key_id" UNIQUE ("key_id"),
    CONSTRAINT "key_id_2" UNIQUE ("key_id", "algorithm")
);
SQL
        pg_own_sql "$SIGNER_DB_USER" private_keys
    } | "$here/pg-psql.sh" -q -v ON_ERROR_STOP=1 -d postgres >/dev/null
}

# --- database server and PKI -------------------------------------------------------------
if [ "$DB_BACKEND" = mysql ]; then
    mariadb -uroot --connect-timeout=2 -e 'SELECT 1' >/dev/null 2>&1 || "$here/start-mariadb.sh"
else
    "$here/start-postgres.sh"
fi
"$repo/certs/make-pki.sh" "$work/certs" >/dev/null

if [ "$DB_BACKEND" = mysql ]; then
    # --- databases, accounts and the schema the Go notary's MySQL migrations end with -----
    account_sql() { # USER PASS DB
        local host
        for host in localhost 127.0.0.1; do
            printf "CREATE USER IF NOT EXISTS '%s'@'%s' IDENTIFIED BY '%s';\n" "$1" "$host" "$2"
            printf "ALTER USER '%s'@'%s' IDENTIFIED BY '%s';\n" "$1" "$host" "$2"
            printf "GRANT ALL PRIVILEGES ON \`%s\`.* TO '%s'@'%s';\n" "$3" "$1" "$host"
        done
    }
    say "databases $SERVER_DB / $SIGNER_DB$( [ "$RESET_DB" = 1 ] && echo " (dropped first)")"
    {
        if [ "$RESET_DB" = 1 ]; then
            echo "DROP DATABASE IF EXISTS \`$SERVER_DB\`;"
            echo "DROP DATABASE IF EXISTS \`$SIGNER_DB\`;"
        fi
        echo "CREATE DATABASE IF NOT EXISTS \`$SERVER_DB\`;"
        echo "CREATE DATABASE IF NOT EXISTS \`$SIGNER_DB\`;"
        account_sql "$SERVER_DB_USER" "$SERVER_DB_PASS" "$SERVER_DB"
        account_sql "$SIGNER_DB_USER" "$SIGNER_DB_PASS" "$SIGNER_DB"
        echo "FLUSH PRIVILEGES;"
        echo "USE \`$SERVER_DB\`;"
        # notary-server: tuf_files (0001 .. 0004), change_category + changefeed (0005).
        cat <<'SQL'
CREATE TABLE IF NOT EXISTS tuf_files (
    id INT NOT NULL AUTO_INCREMENT,
    created_at TIMESTAMP NULL DEFAULT NULL,
    updated_at TIMESTAMP NULL DEFAULT NULL,
    deleted_at TIMESTAMP NULL DEFAULT NULL,
    gun VARCHAR(255) NOT NULL,
    role VARCHAR(255) NOT NULL,
    version INT NOT NULL,
    data LONGBLOB NOT NULL,
    sha256 CHAR(64) DEFAULT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY gun (gun, role, version),
    KEY sha256 (sha256)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE IF NOT EXISTS change_category (
    category VARCHAR(20) NOT NULL,
    PRIMARY KEY (category)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT IGNORE INTO change_category (category) VALUES ('update'), ('deletion');
CREATE TABLE IF NOT EXISTS changefeed (
    id INT NOT NULL AUTO_INCREMENT,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    gun VARCHAR(255) NOT NULL,
    version INT NOT NULL,
    sha256 CHAR(64) DEFAULT NULL,
    category VARCHAR(20) NOT NULL DEFAULT 'update',
    PRIMARY KEY (id),
    KEY idx_changefeed_gun (gun),
    CONSTRAINT changefeed_category_fk FOREIGN KEY (category) REFERENCES change_category (category)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
SQL
        echo "USE \`$SIGNER_DB\`;"
        # notary-signer: private_keys (0001 + 0002: gun, role, last_used).
        cat <<'SQL'
CREATE TABLE IF NOT EXISTS private_keys (
    id INT NOT NULL AUTO_INCREMENT,
    created_at TIMESTAMP NULL DEFAULT NULL,
    updated_at TIMESTAMP NULL DEFAULT NULL,
    deleted_at TIMESTAMP NULL DEFAULT NULL,
    key_id VARCHAR(255) NOT NULL,
    encryption_alg VARCHAR(255) NOT NULL,
    keywrap_alg VARCHAR(255) NOT NULL,
    algorithm VARCHAR(50) NOT NULL,
    passphrase_alias VARCHAR(50) NOT NULL,
    public BLOB NOT NULL,
    private BLOB NOT NULL,
    gun VARCHAR(255) NOT NULL,
    role VARCHAR(255) NOT NULL,
    last_used DATETIME NULL DEFAULT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY key_id (key_id),
    UNIQUE KEY key_id_2 (key_id, algorithm)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
SQL
    } | mariadb -uroot
else
    # --- roles, databases and the schema the Go notary's PostgreSQL migrations end with ---
    setup_postgres
fi

# --- configuration (relative paths resolve against the config file's directory) ----------
if [ "$DB_BACKEND" = mysql ]; then
    dsn() { printf '%s:%s@tcp(%s:%s)/%s?parseTime=True' "$1" "$2" "$DB_HOST" "$DB_PORT" "$3"; }
else
    pg_params="sslmode=$PG_SSLMODE"
    if [ "$PG_SSLMODE" != disable ]; then
        # lib/pq (Go) and libpq open sslrootcert relative to their working directory, not
        # the config's: an absolute path to a copy inside WORKDIR.
        [ -r "$PG_SSLROOTCERT" ] || die "PG_SSLROOTCERT $PG_SSLROOTCERT is not readable"
        install -m 0644 "$PG_SSLROOTCERT" "$work/certs/postgres-ca.crt"
        [[ "$work" =~ ^[A-Za-z0-9_./-]+$ ]] || die "WORKDIR $work: sslrootcert path would need URL escaping"
        pg_params="$pg_params&sslrootcert=$work/certs/postgres-ca.crt"
    fi
    dsn() { printf 'postgres://%s:%s@%s:%s/%s?%s' "$1" "$2" "$DB_HOST" "$DB_PORT" "$3" "$pg_params"; }
fi
auth_json=""
if [ -n "$AUTH_TOKEN_REALM" ] && [ -n "$AUTH_TOKEN_SERVICE" ] &&
   [ -n "$AUTH_TOKEN_ISSUER" ] && [ -n "$AUTH_TOKEN_ROOTCERT" ]; then
    auth_json="$(printf ',\n  "auth": {"type": "token", "options": {"realm": "%s", "service": "%s", "issuer": "%s", "rootcertbundle": "%s"}}' \
        "$AUTH_TOKEN_REALM" "$AUTH_TOKEN_SERVICE" "$AUTH_TOKEN_ISSUER" "$AUTH_TOKEN_ROOTCERT")"
fi
pkcs11_json="" signer_env=()
if [ "$SIGNER_PKCS11" = 1 ]; then
    softhsm_conf="$work/softhsm/softhsm2.conf"
    # A restart keeps the token the database's keys live in; RESET_DB=1 starts afresh.
    if [ "$RESET_DB" = 1 ] || [ ! -f "$softhsm_conf" ]; then
        softhsm_conf="$("$here/softhsm-token.sh" "$work/softhsm" notary 1234)"
    fi
    pkcs11_json="$(printf ',\n  "pkcs11": {"module": "%s", "token_label": "notary"}' \
        "${PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}")"
    signer_env=("SOFTHSM2_CONF=$softhsm_conf" "NOTARY_SIGNER_PKCS11_PIN=1234")
fi
admin_json=""
if [ -n "$ADMIN_PORT" ]; then
    # Ours only (Go's server ignores the section): the admin listener, client certificates
    # from the test root CA (certs/notary-server-client.crt is one).
    admin_json=',
  "admin": {"http_addr": "127.0.0.1:'"$ADMIN_PORT"'", "client_ca_file": "certs/root-ca.crt"}'
fi
log_json=""
if [ "$TRANSPARENCY_LOG" = 1 ]; then
    log_json=',
  "transparency_log": {"enabled": true, "origin": "localhost/notary-log", "interval_ms": 200}'
fi
umask 077
cat >"$work/signer-config.json" <<JSON
{
  "server": {
    "grpc_addr": "127.0.0.1:$SIGNER_PORT",
    "tls_cert_file": "certs/notary-signer.crt",
    "tls_key_file": "certs/notary-signer.key",
    "client_ca_file": "certs/root-ca.crt"
  },
  "logging": {"level": "$LOG_LEVEL"},
  "storage": {
    "backend": "$DB_BACKEND",
    "db_url": "$(dsn "$SIGNER_DB_USER" "$SIGNER_DB_PASS" "$SIGNER_DB")",
    "default_alias": "$SIGNER_ALIAS"
  }$pkcs11_json
}
JSON
cat >"$work/server-config.json" <<JSON
{
  "server": {
    "http_addr": "127.0.0.1:$SERVER_PORT",
    "tls_cert_file": "certs/notary-server.crt",
    "tls_key_file": "certs/notary-server.key"
  },
  "trust_service": {
    "type": "remote",
    "hostname": "127.0.0.1",
    "port": "$SIGNER_PORT",
    "key_algorithm": "$KEY_ALGORITHM",
    "tls_ca_file": "certs/root-ca.crt",
    "tls_client_cert": "certs/notary-server-client.crt",
    "tls_client_key": "certs/notary-server-client.key"
  },
  "logging": {"level": "$LOG_LEVEL"},
  "storage": {
    "backend": "$DB_BACKEND",
    "db_url": "$(dsn "$SERVER_DB_USER" "$SERVER_DB_PASS" "$SERVER_DB")"
  }$auth_json$log_json$admin_json${SERVER_EXTRA_JSON:+,
  $SERVER_EXTRA_JSON}
}
JSON
umask 022

# --- processes ------------------------------------------------------------------------------
# setsid: the services outlive the caller's process group; $! is the service's own PID.
launch() { # NAME BINARY [ENV=VALUE...]
    local name="$1" bin="$2"; shift 2
    env "$@" setsid "$bin" -config "$work/$name-config.json" -logf "$LOG_FORMAT" \
        </dev/null >>"$work/$name.log" 2>&1 &
    echo $! >"$work/$name.pid"
}
give_up() { # NAME WHY
    echo "--- last lines of $work/$1.log" >&2
    tail -n 25 "$work/$1.log" >&2 2>/dev/null || true
    "$here/stop-pair.sh" "$work" >/dev/null 2>&1 || true
    die "$2"
}
await() { # NAME PROBE...
    local name="$1" deadline=$((SECONDS + START_WAIT)); shift
    while [ "$SECONDS" -lt "$deadline" ]; do
        running "$work/$name.pid" || return 1
        "$@" && return 0
        sleep 0.25
    done
    return 1
}
server_healthy() {
    curl -fsS --max-time 2 --cacert "$work/certs/root-ca.crt" \
        "https://127.0.0.1:$SERVER_PORT/_notary_server/health" >/dev/null 2>&1
}

alias_var="NOTARY_SIGNER_$(printf '%s' "$SIGNER_ALIAS" | tr '[:lower:]' '[:upper:]')"
say "signer $NOTARY_SIGNER_BIN on 127.0.0.1:$SIGNER_PORT (passphrase in \$$alias_var)"
launch signer "$NOTARY_SIGNER_BIN" "$alias_var=$SIGNER_PASSPHRASE" ${signer_env[@]+"${signer_env[@]}"}
await signer listening "$SIGNER_PORT" || give_up signer "notary-signer did not start listening"

say "server $NOTARY_SERVER_BIN on 127.0.0.1:$SERVER_PORT"
launch server "$NOTARY_SERVER_BIN"
await server server_healthy || give_up server "notary-server did not report healthy"

# The server only dials the signer when it needs a key: ask for a timestamp key of a
# throw-away GUN so a broken mTLS setup fails here, not in the first test.
probe="example.com/start-pair-probe/$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
status="$(curl -sS -o /dev/null -w '%{http_code}' --max-time 15 --cacert "$work/certs/root-ca.crt" \
    "https://127.0.0.1:$SERVER_PORT/v2/$probe/_trust/tuf/timestamp.key" 2>/dev/null || true)"
case "$status" in
    200) ;;
    401) [ -n "$auth_json" ] || give_up server "signer probe answered 401 without auth configured" ;;
    *) give_up server "the server could not get a key from the signer (HTTP $status; see signer.log)" ;;
esac

say "up: server pid $(cat "$work/server.pid"), signer pid $(cat "$work/signer.pid")"
say "URL https://127.0.0.1:$SERVER_PORT  CA $work/certs/root-ca.crt  stop: $here/stop-pair.sh $work"
