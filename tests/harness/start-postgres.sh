#!/usr/bin/env bash
# Makes sure a PostgreSQL test cluster answers on 127.0.0.1:5433 for the tests.
#
# If `pg_isready -h 127.0.0.1 -p PG_PORT` already answers, nothing is started. Otherwise a
# cluster of Debian's newest PostgreSQL (/usr/lib/postgresql/*/bin) is initialised in
# PG_DATADIR when that is empty (initdb as the OS user postgres), its test settings are
# (re)written, a TLS certificate is made with certs/make-pki.sh in PG_DATADIR/tls, and
# `postgres` is started in the background as user postgres. The script then waits until
# pg_isready answers.
#
# The cluster is separate from Debian's own (pg_createcluster's 15/main on 5432 is never
# touched) and is for tests only:
#   listen_addresses 127.0.0.1 only; unix socket in PG_SOCKDIR
#   pg_hba: local all postgres peer          (OS root: tests/harness/pg-psql.sh)
#           hostssl all all 127.0.0.1/32 scram-sha-256
#           host    all all 127.0.0.1/32 scram-sha-256   (TLS or not; the client chooses)
#   ssl on: PG_DATADIR/tls/notary-server.crt (SAN localhost, 127.0.0.1), issued by
#           PG_DATADIR/tls/root-ca.crt (the CA for sslmode=verify-ca / verify-full)
#   max_connections 300 (each server pools up to 16 connections, tests start several)
#   fsync, synchronous_commit and full_page_writes off: fast, and a crash may lose or
#           corrupt data, which is acceptable for throw-away test databases only
#   timezone UTC
#
# Usage: tests/harness/start-postgres.sh        (as root)
# Stop:  tests/harness/stop-postgres.sh, or kill -INT "$(head -1 PG_DATADIR/postmaster.pid)"
# psql:  tests/harness/pg-psql.sh [PSQL ARGS...]   (superuser postgres over the unix socket), i.e.
#        runuser -u postgres -- psql -h PG_SOCKDIR -p PG_PORT
# Env:   PG_PORT [5433]  PG_DATADIR [/var/lib/notary-test-pg]  PG_SOCKDIR [/run/notary-test-pg]
#        PG_WAIT [60] (seconds)  PG_BINDIR [newest /usr/lib/postgresql/*/bin]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

port="${PG_PORT:-5433}"
datadir="${PG_DATADIR:-/var/lib/notary-test-pg}"
sockdir="${PG_SOCKDIR:-/run/notary-test-pg}"
wait_s="${PG_WAIT:-60}"
bindir="${PG_BINDIR:-$({ ls -d /usr/lib/postgresql/*/bin 2>/dev/null || true; } | sort -V | tail -n 1)}"
pidfile="$datadir/postmaster.pid"
logfile="$datadir/postgres.log"

say() { echo "start-postgres: $*"; }
[[ "$port" =~ ^[0-9]+$ ]] || { say "PG_PORT must be a number" >&2; exit 1; }
ready() { "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" -t 2 >/dev/null 2>&1; }
hints() {
    say "stop: kill -INT \"\$(head -1 $pidfile)\"   (or tests/harness/stop-postgres.sh)"
    say "psql: runuser -u postgres -- $bindir/psql -h $sockdir -p $port   (or tests/harness/pg-psql.sh)"
}

[ -n "$bindir" ] && [ -x "$bindir/postgres" ] && [ -x "$bindir/initdb" ] ||
    { say "no PostgreSQL server in /usr/lib/postgresql/*/bin; run tests/harness/install.sh" >&2; exit 1; }
if ready; then
    say "already answering on 127.0.0.1:$port"
    hints
    exit 0
fi
id postgres >/dev/null 2>&1 || { say "no 'postgres' system user; run tests/harness/install.sh" >&2; exit 1; }
as_postgres() { runuser -u postgres -- "$@"; }

install -d -o postgres -g postgres -m 0755 "$sockdir"
if [ ! -f "$datadir/PG_VERSION" ]; then
    say "initialising the cluster in $datadir ($bindir)"
    install -d -o postgres -g postgres -m 0700 "$datadir"
    as_postgres "$bindir/initdb" -D "$datadir" -U postgres --encoding=UTF8 --locale=C \
        --auth-local=peer --auth-host=scram-sha-256 >/dev/null
fi

# TLS: the dev PKI of this repository; its notary-server certificate names 127.0.0.1 and
# localhost, which is what verify-full checks. make-pki.sh keeps valid existing files.
"$repo/certs/make-pki.sh" "$datadir/tls" >/dev/null
chown -R postgres:postgres "$datadir/tls"
chmod 0700 "$datadir/tls"

# Settings are rewritten on every start (PG_PORT or PG_SOCKDIR may have changed); the
# main postgresql.conf only gains one include line.
cat >"$datadir/notary-test.conf" <<CONF
# Written by tests/harness/start-postgres.sh on every start; edits are lost.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sockdir'
max_connections = 300
password_encryption = 'scram-sha-256'
ssl = on
ssl_cert_file = 'tls/notary-server.crt'
ssl_key_file = 'tls/notary-server.key'
ssl_ca_file = 'tls/root-ca.crt'
timezone = 'UTC'
log_timezone = 'UTC'
# Test cluster only: no durability, a crash may lose or corrupt data.
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
cat >"$datadir/pg_hba.conf" <<HBA
# Written by tests/harness/start-postgres.sh on every start; edits are lost.
# TYPE  DATABASE  USER      ADDRESS         METHOD
local   all       postgres                  peer
hostssl all       all       127.0.0.1/32    scram-sha-256
host    all       all       127.0.0.1/32    scram-sha-256
HBA
chown postgres:postgres "$datadir/notary-test.conf" "$datadir/pg_hba.conf"
chmod 0600 "$datadir/notary-test.conf" "$datadir/pg_hba.conf"
grep -qx "include_if_exists = 'notary-test.conf'" "$datadir/postgresql.conf" ||
    echo "include_if_exists = 'notary-test.conf'" >>"$datadir/postgresql.conf"

# A postmaster.pid whose process is gone would only be a stale file (postgres itself
# ignores it); one whose process lives means a server is still starting up.
running=0
if [ -f "$pidfile" ]; then
    old="$(head -n 1 "$pidfile")"
    if [[ "$old" =~ ^[0-9]+$ ]] && kill -0 "$old" 2>/dev/null; then running=1; fi
fi
if [ "$running" = 0 ]; then
    say "starting postgres on 127.0.0.1:$port (log $logfile)"
    touch "$logfile"; chown postgres:postgres "$logfile"
    # setsid: the cluster outlives the caller's process group.
    setsid runuser -u postgres -- "$bindir/postgres" -D "$datadir" \
        </dev/null >>"$logfile" 2>&1 &
fi

deadline=$((SECONDS + wait_s))
while [ "$SECONDS" -lt "$deadline" ]; do
    if ready; then
        say "up on 127.0.0.1:$port (pid $(head -n 1 "$pidfile" 2>/dev/null), data $datadir, CA $datadir/tls/root-ca.crt)"
        hints
        exit 0
    fi
    sleep 0.5
done
say "no answer after ${wait_s}s; end of $logfile:" >&2
tail -n 30 "$logfile" >&2 2>/dev/null || true
exit 1
