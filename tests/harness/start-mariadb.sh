#!/usr/bin/env bash
# Makes sure a MariaDB server answers on 127.0.0.1:3306 for the tests.
#
# If `mariadb -uroot` already connects, nothing is started. Otherwise the data directory is
# initialised when empty, /run/mysqld is created, mariadbd is started in the background
# (bound to 127.0.0.1 only) and the script waits until it accepts queries. The OS root user
# logs in through the unix socket.
#
# Usage: tests/harness/start-mariadb.sh        (as root)
# Stop:  kill "$(cat /run/mysqld/mysqld.pid)"
# Env:   MARIADB_PORT [3306]  MARIADB_DATADIR [/var/lib/mysql]  MARIADB_WAIT [60] (seconds)
set -euo pipefail

port="${MARIADB_PORT:-3306}"
datadir="${MARIADB_DATADIR:-/var/lib/mysql}"
wait_s="${MARIADB_WAIT:-60}"
rundir=/run/mysqld
pidfile="$rundir/mysqld.pid"
errlog=/var/log/mysql/error.log

say() { echo "start-mariadb: $*"; }
ready() { mariadb -uroot --connect-timeout=2 -e 'SELECT 1' >/dev/null 2>&1; }

if ready; then
    say "already answering (stop: kill \"\$(cat $pidfile)\")"
    exit 0
fi
command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] ||
    { say "mariadbd is not installed; run tests/harness/install.sh" >&2; exit 1; }
id mysql >/dev/null 2>&1 || { say "no 'mysql' system user; run tests/harness/install.sh" >&2; exit 1; }

install -d -o mysql -g mysql -m 0755 "$rundir"
install -d -o mysql -m 0750 "$(dirname "$errlog")"
if [ ! -d "$datadir/mysql" ]; then
    say "initialising the data directory $datadir"
    install -d -o mysql -g mysql -m 0755 "$datadir"
    mariadb-install-db --user=mysql --datadir="$datadir" \
        --auth-root-authentication-method=socket >/dev/null
fi

# A PID file left by a server that died would make us believe it runs.
if [ -f "$pidfile" ]; then
    old="$(cat "$pidfile")"
    if ! kill -0 "$old" 2>/dev/null; then rm -f "$pidfile"; fi
fi

if [ ! -f "$pidfile" ]; then
    say "starting mariadbd on 127.0.0.1:$port (log $errlog)"
    setsid /usr/sbin/mariadbd --user=mysql --datadir="$datadir" \
        --bind-address=127.0.0.1 --port="$port" \
        --socket="$rundir/mysqld.sock" --pid-file="$pidfile" \
        --log-error="$errlog" </dev/null >/dev/null 2>&1 &
fi

deadline=$((SECONDS + wait_s))
while [ "$SECONDS" -lt "$deadline" ]; do
    if ready; then
        say "up on 127.0.0.1:$port (stop: kill \"\$(cat $pidfile)\")"
        exit 0
    fi
    sleep 0.5
done
say "no answer after ${wait_s}s; end of $errlog:" >&2
tail -n 30 "$errlog" >&2 2>/dev/null || true
exit 1
