#!/usr/bin/env bash
# Runs psql as the superuser postgres against the test cluster of start-postgres.sh, over its
# unix socket (peer authentication as the OS user postgres), so root needs no password.
#
# Usage: tests/harness/pg-psql.sh [PSQL ARGS...]      (as root)
#   e.g. tests/harness/pg-psql.sh -d notaryserver -c 'SELECT gun, role, version FROM tuf_files'
# Env:   PG_PORT [5433]  PG_SOCKDIR [/run/notary-test-pg]  PG_BINDIR [newest /usr/lib/postgresql/*/bin]
set -euo pipefail
port="${PG_PORT:-5433}"
sockdir="${PG_SOCKDIR:-/run/notary-test-pg}"
bindir="${PG_BINDIR:-$({ ls -d /usr/lib/postgresql/*/bin 2>/dev/null || true; } | sort -V | tail -n 1)}"
[ -n "$bindir" ] && [ -x "$bindir/psql" ] ||
    { echo "pg-psql: no psql in /usr/lib/postgresql/*/bin; run tests/harness/install.sh" >&2; exit 1; }
exec runuser -u postgres -- "$bindir/psql" -X -h "$sockdir" -p "$port" -U postgres "$@"
