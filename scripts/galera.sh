#!/usr/bin/env bash
# A MariaDB Galera cluster of N nodes (default 3) on 127.0.0.1, for the multi-primary tests.
# Every node is a mariadbd of its own under DIR/nodeK, with its own config, data, socket,
# PID file, error log and ports, all bound to 127.0.0.1. The host's MariaDB (/run/mysqld,
# port 3306, /var/lib/mysql, /etc/mysql) is never read or touched: each node is started with
# --defaults-file=DIR/nodeK/my.cnf, which makes mariadbd (and the SST scripts it runs, which
# read the same file) ignore /etc/mysql entirely.
#
# Usage (as root):
#   scripts/galera.sh start   DIR [N]   initialise (first time) and start N nodes; wait until
#                                       all are Synced in one Primary component of size N
#   scripts/galera.sh stop    DIR       SIGTERM each node by PID (N..1), SIGKILL after a timeout
#   scripts/galera.sh status  DIR       per node: PID, wsrep state; exit 1 unless all Synced
#   scripts/galera.sh kill    DIR K     SIGKILL node K (and its SST helpers): a crash
#   scripts/galera.sh restart DIR K     start node K again; it rejoins the running cluster
#                                       (IST when the donor's gcache still holds the gap)
#   scripts/galera.sh ports   DIR       "K SQL_PORT SOCKET" per node, for test harnesses
#
# Ports of node K (1-based), fixed when DIR is first initialised (kept in DIR/cluster.env):
#   SQL      GALERA_SQL_BASE   + K-1          default 23061, 23062, 23063
#   gcomm    GALERA_GCOMM_BASE + 10*(K-1)     default 23567, 23577, 23587 (group communication)
#   IST      gcomm port + 1                   incremental state transfer receiver
#   SST      gcomm port + 2                   rsync daemon of a joiner during a full SST
# Galera's own default IST port is "gcomm port + 1" too, so neighbouring nodes must never use
# consecutive gcomm ports: hence the stride of 10.
#
# Users: root@localhost through the unix socket (OS root only), and notary_test with password
# notary_test_pw at '%', '127.0.0.1' and 'localhost', ALL PRIVILEGES WITH GRANT OPTION,
# created through the cluster (so replicated to every node).
#
# Env: GALERA_SQL_BASE [23061]  GALERA_GCOMM_BASE [23567]  (only when DIR is initialised)
#      GALERA_WAIT [180] seconds a node may take to reach Synced (a full SST included)
#      GALERA_STOP_WAIT [60] seconds after SIGTERM before SIGKILL
#      GALERA_PROVIDER [/usr/lib/galera/libgalera_smm.so] (Debian's galera-4 package)
#
# Packages: mariadb-server (mariadbd, mariadb-install-db, wsrep_sst_rsync), galera-4, rsync,
# iproute2 (ss: the SST script and our port check use it). See docs/galera.md.
set -euo pipefail
shopt -s inherit_errexit   # a failing $(...) inside a function's $(...) stops it too
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"   # mariadbd runs wsrep_sst_* from PATH

MARIADBD=/usr/sbin/mariadbd
PROVIDER="${GALERA_PROVIDER:-/usr/lib/galera/libgalera_smm.so}"
WAIT_S="${GALERA_WAIT:-180}"
STOP_WAIT_S="${GALERA_STOP_WAIT:-60}"
# mariadbd runs as the `mysql` system user, never as root. Why not --user=root: the SST
# scripts run with mariadbd's uid, and an rsync daemon started by root switches every
# transfer to the "nobody" user (rsyncd.conf's default `uid` for a root daemon; the config
# wsrep_sst_rsync writes sets none), so a root-owned joiner could not write its own
# datadir. As `mysql`, rsync keeps the mysql uid and the data stays owned by mysql.
RUN_AS=mysql
CLUSTER_NAME=notary_galera

say() { echo "galera: $*"; }
die() { echo "galera: $*" >&2; exit 1; }

usage() {
    sed -n '/^# Usage/,/^# Ports/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

# --- paths and ports of node K ---------------------------------------------------------------
ndir() { echo "$DIR/node$1"; }
cnf() { echo "$DIR/node$1/my.cnf"; }
datadir() { echo "$DIR/node$1/data"; }
sock() { echo "$DIR/node$1/mysqld.sock"; }
pidfile() { echo "$DIR/node$1/mysqld.pid"; }
errlog() { echo "$DIR/node$1/error.log"; }
sql_port() { echo $((SQL_BASE + $1 - 1)); }
gcomm_port() { echo $((GCOMM_BASE + 10 * ($1 - 1))); }
ist_port() { echo $(($(gcomm_port "$1") + 1)); }
sst_port() { echo $(($(gcomm_port "$1") + 2)); }
cluster_address() {
    local k addrs=()
    for k in $(seq 1 "$N"); do addrs+=("127.0.0.1:$(gcomm_port "$k")"); done
    local IFS=,
    echo "gcomm://${addrs[*]}"
}

# Loads DIR/cluster.env (N and the port bases chosen at initialisation).
load_env() {
    [ -f "$DIR/cluster.env" ] || die "$DIR is not a galera.sh cluster directory (no cluster.env)"
    # shellcheck source=/dev/null
    . "$DIR/cluster.env"
}

# --- processes -------------------------------------------------------------------------------
# PID of node K if it runs, else empty. The PID file alone is not trusted: after a kill -9 it
# stays behind and its PID may since belong to another process, so the process must also be a
# mariadbd started with this node's config file.
node_pid() {
    local f pid cmd
    f="$(pidfile "$1")"
    [ -s "$f" ] || return 0
    pid="$(cat "$f")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    cmd="$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" || true)"
    [[ "$cmd" == *mariadbd*"--defaults-file=$(cnf "$1") "* ]] && echo "$pid"
    return 0
}

# Runs SQL on node K as root over its unix socket. --no-defaults keeps /etc/mysql's client
# settings (the host's socket) out.
sql() {
    local k="$1"
    shift
    mariadb --no-defaults --protocol=socket -S "$(sock "$k")" -uroot --connect-timeout=3 \
        -N -B "$@"
}

# "size state ready status" of node K from SHOW STATUS (allowed even on a non-Primary node,
# where ordinary queries fail), or nothing when it does not answer.
wsrep_state() {
    sql "$1" -e "SHOW GLOBAL STATUS WHERE Variable_name IN
        ('wsrep_cluster_size','wsrep_local_state_comment','wsrep_ready','wsrep_cluster_status')" \
        2>/dev/null | awk '{v[$1]=$2} END {
            if (NR) print v["wsrep_cluster_size"], v["wsrep_local_state_comment"],
                          v["wsrep_ready"], v["wsrep_cluster_status"] }' || true
}

show_log() { # K
    # stdout.log has what mariadbd says before it opens its error log (bad options, datadir).
    local f="$(ndir "$1")/stdout.log"
    if [ -s "$f" ]; then
        echo "galera: last 6 lines of $f:" >&2
        tail -n 6 "$f" >&2
    fi
    f="$(errlog "$1")"
    if [ -s "$f" ]; then
        echo "galera: last 40 lines of $f:" >&2
        tail -n 40 "$f" >&2
    fi
}

fail_node() { # K MESSAGE
    echo "galera: node $1: $2" >&2
    show_log "$1"
    exit 1
}

size_of() { # FILE: its size in bytes, 0 if missing
    stat -c %s "$1" 2>/dev/null || echo 0
}

port_free() { # PORT
    [ -z "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
}

# --- configuration ---------------------------------------------------------------------------
# SST failures met while writing this, and the setting that avoids each (docs/galera.md has the
# log lines): mariadbd as root -> the joiner's rsync daemon writes as "nobody", "Permission
# denied (13)", donor exit 255 (RUN_AS above); a shared or taken SST port (default 4444 for
# every node, also scripts/run.sh's admin port) -> the rsync daemon cannot listen, exit 16
# EBUSY (wsrep_sst_receive_address per node); an IST port taken -> the donor gives up with
# ENOMSG (ist.recv_addr per node, plus the retry in launch). An "SST EINVAL" (22) reported
# earlier was not reproduced: in these SST scripts 22 only comes from a bad --role or SSL
# options.
write_cnf() { # K
    local k="$1"
    cat >"$(cnf "$k")" <<EOF
# Written by scripts/galera.sh (rewritten at every start: edit the script, not this file).
[mysqld]
datadir=$(datadir "$k")
socket=$(sock "$k")
pid-file=$(pidfile "$k")
log-error=$(errlog "$k")
port=$(sql_port "$k")
bind-address=127.0.0.1
skip-name-resolve
user=$RUN_AS

# Galera requirements: row-based replication events, a transactional engine, and the
# "interleaved" auto-increment lock mode (mode 1 can deadlock appliers on INSERT ... SELECT).
binlog_format=ROW
default_storage_engine=InnoDB
innodb_autoinc_lock_mode=2
# A test cluster: small memory and redo log (the redo log is copied by every SST). Commits are
# written to the OS at each commit and flushed once a second: a killed mariadbd loses nothing
# (only an OS crash could), and durability comes from the other nodes anyway.
innodb_buffer_pool_size=64M
innodb_log_file_size=32M
innodb_flush_log_at_trx_commit=2

wsrep_on=ON
wsrep_provider=$PROVIDER
wsrep_cluster_name=$CLUSTER_NAME
wsrep_cluster_address=$(cluster_address)
wsrep_node_name=node$k
wsrep_node_address=127.0.0.1:$(gcomm_port "$k")
# Every listener on 127.0.0.1 and on this node's own ports: group communication, the IST
# receiver (Galera would otherwise take gcomm+1 on all interfaces) and the SST receiver
# (otherwise 4444 for every node, so two joiners on one host would collide).
wsrep_provider_options="gmcast.listen_addr=tcp://127.0.0.1:$(gcomm_port "$k");ist.recv_addr=127.0.0.1:$(ist_port "$k");gcache.size=64M"
wsrep_sst_method=rsync
wsrep_sst_receive_address=127.0.0.1:$(sst_port "$k")
EOF
}

# --- grastate.dat and position recovery ------------------------------------------------------
grastate_get() { # K KEY
    local f
    f="$(datadir "$1")/grastate.dat"
    [ -f "$f" ] || return 0
    awk -v key="$2:" '$1 == key {print $2}' "$f"
}

# The last committed position "uuid:seqno" of a stopped node K, read from InnoDB with
# `mariadbd --wsrep-recover` (as galera_recovery does for systemd). Needed whenever
# grastate.dat says seqno -1, i.e. the node did not shut down cleanly: Galera only writes the
# seqno at a clean shutdown, and without a position a joiner can only ask for a full SST.
recover_position() { # K
    local k="$1" log pos
    log="$(ndir "$k")/recover.log"
    write_cnf "$k"
    : >"$log"
    chown -R "$RUN_AS:" "$(ndir "$k")"
    # --skip-networking: the recovery run would otherwise bind the SQL port, too.
    if ! "$MARIADBD" --defaults-file="$(cnf "$k")" --wsrep-recover --skip-networking \
        --log-error="$log" </dev/null >/dev/null 2>&1; then
        echo "galera: node $k: mariadbd --wsrep-recover failed; $log:" >&2
        tail -n 30 "$log" >&2
        exit 1
    fi
    pos="$(grep -a 'WSREP: Recovered position:' "$log" | tail -n 1 |
        sed 's/.*Recovered position: *//')"
    [ -n "$pos" ] || { tail -n 30 "$log" >&2; die "node $k: no position in $log"; }
    echo "$pos"
}

# Options that give a stopped node K its position: nothing after a clean shutdown (grastate.dat
# has the seqno), --wsrep-start-position after a crash, so it can rejoin by IST.
start_position_opt() { # K
    local seqno pos
    seqno="$(grastate_get "$1" seqno)"
    if [ "$seqno" = "-1" ]; then
        pos="$(recover_position "$1")" # an assignment, so a failure stops us (errexit)
        echo "--wsrep-start-position=$pos"
    fi
}

# --- starting one node -----------------------------------------------------------------------
# Starts node K with the extra mariadbd options given, in a session of its own (setsid: it is
# the leader of its own process group, so it does not die with the caller's terminal and
# `kill` can reach the SST helpers it spawns), then waits until it is Synced.
#
# A start that dies of "Address already in use" is retried (3 attempts). The default ports
# lie below Linux's ephemeral range (32768-60999); bases inside it are a risk, since a client connection elsewhere on the host (a
# benchmark hammering 127.0.0.1:3306, say) can hold one of them as its local port for a
# moment. Seen here: a joiner could not open its IST listener, its donor then gave up with
# "State transfer ... failed: No message of desired type" and the joiner aborted. The
# listening-port check below cannot see such client sockets.
launch() { # K EXTRA_OPTION...
    local k="$1" p attempt log_off out_off pid
    shift
    [ -z "$(node_pid "$k")" ] || die "node $k already runs (pid $(node_pid "$k"))"
    for p in "$(sql_port "$k")" "$(gcomm_port "$k")" "$(ist_port "$k")" "$(sst_port "$k")"; do
        port_free "$p" || die "node $k: port $p on this host is taken (ss -ltnp 'sport = :$p')"
    done
    write_cnf "$k"
    # A joiner's datadir may be empty (its first SST fills it), but it must exist.
    mkdir -p "$(datadir "$k")"
    for attempt in 1 2 3; do
        chown -R "$RUN_AS:" "$(ndir "$k")"
        rm -f "$(pidfile "$k")"
        log_off="$(size_of "$(errlog "$k")")"
        out_off="$(size_of "$(ndir "$k")/stdout.log")"
        # --defaults-file must come first; mariadbd then reads no other option file.
        setsid "$MARIADBD" --defaults-file="$(cnf "$k")" "$@" \
            </dev/null >>"$(ndir "$k")/stdout.log" 2>&1 &
        pid=$!
        disown "$pid" # no "Aborted" job report from bash when a start fails
        say "node $k: started (pid $pid, SQL 127.0.0.1:$(sql_port "$k"), gcomm $(gcomm_port "$k"))${*:+ with $*}"
        wait_synced "$k" "$pid" && return 0
        if [ "$attempt" -lt 3 ] &&
            { tail -c +$((log_off + 1)) "$(errlog "$k")" 2>/dev/null
              tail -c +$((out_off + 1)) "$(ndir "$k")/stdout.log" 2>/dev/null; } |
            grep -a 'Address already in use' >/dev/null; then # no -q: SIGPIPE + pipefail
            say "node $k: a port was in use by another socket (see $(errlog "$k")); retrying"
            sleep 2
            continue
        fi
        fail_node "$k" "mariadbd (pid $pid) exited during startup"
    done
}

# Waits until node K (mariadbd PID) is Synced, ready and Primary; returns 1 if mariadbd exits.
wait_synced() { # K PID
    local k="$1" pid="$2" st deadline=$((SECONDS + WAIT_S))
    while [ "$SECONDS" -lt "$deadline" ]; do
        kill -0 "$pid" 2>/dev/null || return 1
        st="$(wsrep_state "$k")"
        # shellcheck disable=SC2086
        set -- $st
        if [ "${2:-}" = Synced ] && [ "${3:-}" = ON ] && [ "${4:-}" = Primary ]; then
            say "node $k: Synced (cluster size $1)"
            return 0
        fi
        sleep 0.5
    done
    fail_node "$k" "not Synced after ${WAIT_S}s (state: ${st:-no answer})"
}

# --- subcommands -----------------------------------------------------------------------------
cmd_start() {
    local want="${1:-3}" k opt running=() stopped=()
    [[ "$want" =~ ^[1-9]$ ]] || die "N must be 1..9"
    [ "$(id -u)" = 0 ] || die "run as root (mariadbd is started as the '$RUN_AS' user)"
    id "$RUN_AS" >/dev/null 2>&1 || die "no '$RUN_AS' user: install mariadb-server"
    [ -x "$MARIADBD" ] || die "$MARIADBD missing: install mariadb-server"
    [ -f "$PROVIDER" ] || die "$PROVIDER missing: install galera-4"
    command -v rsync >/dev/null || die "rsync missing (the SST method): apt-get install rsync"
    command -v ss >/dev/null || die "ss missing: apt-get install iproute2"

    mkdir -p "$DIR"
    DIR="$(cd "$DIR" && pwd)"
    # mariadbd runs as mysql and needs to reach DIR/nodeK (a 0700 temporary directory would stop it).
    runuser -u "$RUN_AS" -- test -x "$DIR" ||
        die "user $RUN_AS cannot enter $DIR (every parent needs o+x; e.g. chmod 755 $DIR)"
    [ ${#DIR} -le 80 ] || die "DIR path too long for a unix socket path (max 80 characters)"

    if [ ! -f "$DIR/cluster.env" ]; then
        cat >"$DIR/cluster.env" <<EOF
N=$want
SQL_BASE=${GALERA_SQL_BASE:-23061}
GCOMM_BASE=${GALERA_GCOMM_BASE:-23567}
EOF
    fi
    load_env
    [ "$want" = "$N" ] || [ $# -eq 0 ] || die "$DIR was initialised with N=$N nodes, not $want"

    for k in $(seq 1 "$N"); do
        mkdir -p "$(ndir "$k")"
        if [ -n "$(node_pid "$k")" ]; then running+=("$k"); else stopped+=("$k"); fi
    done
    [ ${#stopped[@]} -gt 0 ] || say "all $N nodes already run"

    local t0=$SECONDS
    if [ ${#running[@]} -gt 0 ]; then
        # Some nodes run: the others join them, but only a Primary component can take them.
        local st
        st="$(wsrep_state "${running[0]}")"
        [[ "$st" == *" Primary" ]] ||
            die "node ${running[0]} runs but is not in a Primary component ($st): '$0 stop $DIR', then '$0 start $DIR' (bootstraps from the most advanced node)"
        for k in "${stopped[@]}"; do
            opt="$(start_position_opt "$k")"
            # shellcheck disable=SC2086
            launch "$k" $opt
        done
    elif [ ! -d "$(datadir 1)/mysql" ]; then
        # A new cluster: only node 1 is initialised; the others start with an empty datadir and
        # get it from node 1 by SST (rsync), which Galera does before InnoDB starts.
        say "initialising $DIR (N=$N)"
        install -d -o "$RUN_AS" -m 0750 "$(datadir 1)"
        mariadb-install-db --no-defaults --user="$RUN_AS" --datadir="$(datadir 1)" \
            --auth-root-authentication-method=socket --skip-test-db \
            >"$(ndir 1)/install-db.log" 2>&1 ||
            { cat "$(ndir 1)/install-db.log" >&2; die "mariadb-install-db failed"; }
        launch 1 --wsrep-new-cluster
        for k in $(seq 2 "$N"); do launch "$k"; done
    else
        # No node runs, but the cluster existed: bootstrap from the most advanced node.
        local boot boot_opt=""
        boot="$(choose_bootstrap)"
        if [ "$(grastate_get "$boot" seqno)" = "-1" ]; then
            boot_opt="$(start_position_opt "$boot")"
        fi
        # Galera refuses --wsrep-new-cluster unless grastate.dat says safe_to_bootstrap: 1
        # (it is 0 on every node after a crash of all of them). We chose the node with the
        # highest committed seqno, so no committed transaction is lost by bootstrapping it.
        sed -i 's/^safe_to_bootstrap:.*/safe_to_bootstrap: 1/' "$(datadir "$boot")/grastate.dat"
        # shellcheck disable=SC2086
        launch "$boot" --wsrep-new-cluster $boot_opt
        for k in $(seq 1 "$N"); do
            [ "$k" = "$boot" ] && continue
            opt="$(start_position_opt "$k")"
            # shellcheck disable=SC2086
            launch "$k" $opt
        done
    fi

    wait_cluster
    create_users
    say "cluster of $N up in $((SECONDS - t0))s: SQL ports $(sql_port 1)..$(sql_port "$N") on 127.0.0.1 (stop: $0 stop $DIR)"
}

# The node to bootstrap after every node stopped: one whose grastate.dat says
# safe_to_bootstrap: 1 (Galera sets it on the last node of a clean shutdown, which has every
# transaction), else the highest seqno, read from grastate.dat or, when that says -1 (the
# node crashed), recovered from InnoDB. Ties go to the lowest node number.
choose_bootstrap() {
    local k seq best="" best_seq=-2
    for k in $(seq 1 "$N"); do
        if [ "$(grastate_get "$k" safe_to_bootstrap)" = 1 ]; then
            echo "galera: node $k has safe_to_bootstrap: 1; bootstrapping it" >&2
            echo "$k"
            return 0
        fi
    done
    for k in $(seq 1 "$N"); do
        [ -f "$(datadir "$k")/grastate.dat" ] || continue
        seq="$(grastate_get "$k" seqno)"
        if [ "$seq" = "-1" ]; then
            seq="$(recover_position "$k")"
            seq="${seq##*:}"
        fi
        echo "galera: node $k: last committed seqno $seq" >&2
        if [ "$seq" -gt "$best_seq" ]; then best="$k" best_seq="$seq"; fi
    done
    [ -n "$best" ] || die "no node of $DIR has a grastate.dat; remove $DIR to start over"
    echo "galera: bootstrapping node $best (seqno $best_seq)" >&2
    echo "$best"
}

# Waits until every node reports the full cluster: size N, Synced, wsrep_ready ON, Primary.
wait_cluster() {
    local k st deadline=$((SECONDS + WAIT_S))
    for k in $(seq 1 "$N"); do
        while :; do
            st="$(wsrep_state "$k")"
            [ "$st" = "$N Synced ON Primary" ] && break
            [ "$SECONDS" -lt "$deadline" ] ||
                fail_node "$k" "no full cluster after ${WAIT_S}s (size/state/ready/status: ${st:-no answer})"
            sleep 0.5
        done
    done
}

# notary_test for the tests, from any address (the compose variant and TCP on 127.0.0.1) and
# the socket. CREATE USER and GRANT are replicated by Galera (total order isolation), so they
# run on node 1 only; then every node must accept the login over TCP.
create_users() {
    local h k
    for h in '%' '127.0.0.1' 'localhost'; do
        sql 1 -e "CREATE USER IF NOT EXISTS 'notary_test'@'$h' IDENTIFIED BY 'notary_test_pw';
                  ALTER USER 'notary_test'@'$h' IDENTIFIED BY 'notary_test_pw';
                  GRANT ALL PRIVILEGES ON *.* TO 'notary_test'@'$h' WITH GRANT OPTION;" ||
            fail_node 1 "creating user notary_test@'$h' failed"
    done
    for k in $(seq 1 "$N"); do
        mariadb --no-defaults -h 127.0.0.1 -P "$(sql_port "$k")" -unotary_test -pnotary_test_pw \
            --connect-timeout=3 -N -B -e 'SELECT 1' >/dev/null ||
            fail_node "$k" "notary_test cannot log in over TCP"
    done
    say "user notary_test (password notary_test_pw) works on every node"
}

# Stops node K: SIGTERM (a clean shutdown writes the seqno into grastate.dat), then SIGKILL of
# its whole process group after STOP_WAIT_S.
stop_node() { # K
    local k="$1" pid i
    pid="$(node_pid "$k")"
    [ -n "$pid" ] || { say "node $k: not running"; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_WAIT_S * 4; i++)); do
        kill -0 "$pid" 2>/dev/null || { say "node $k: stopped (pid $pid)"; return 0; }
        sleep 0.25
    done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    say "node $k: killed (pid $pid) after ${STOP_WAIT_S}s without exiting on SIGTERM"
}

cmd_stop() {
    local k
    load_env
    # Highest node first, one at a time: the last node to leave is marked safe_to_bootstrap,
    # and that is node 1, which the next `start` then bootstraps.
    for k in $(seq "$N" -1 1); do stop_node "$k"; done
}

cmd_status() {
    local k pid st all=0
    load_env
    printf '%-5s %-8s %-6s %-5s %-13s %-6s %s\n' node pid port size state ready status
    for k in $(seq 1 "$N"); do
        pid="$(node_pid "$k")"
        if [ -z "$pid" ]; then
            printf '%-5s %-8s %-6s %s\n' "$k" - "$(sql_port "$k")" "not running"
            all=1
            continue
        fi
        st="$(wsrep_state "$k")"
        # shellcheck disable=SC2086
        set -- ${st:-? no-answer ? ?}
        printf '%-5s %-8s %-6s %-5s %-13s %-6s %s\n' "$k" "$pid" "$(sql_port "$k")" "$1" "$2" "$3" "$4"
        [ "$2 $3 $4" = "Synced ON Primary" ] && [ "$1" = "$N" ] || all=1
    done
    return $all
}

cmd_kill() { # K
    local k="$1" pid i
    load_env
    [[ "$k" =~ ^[0-9]+$ ]] && [ "$k" -ge 1 ] && [ "$k" -le "$N" ] || die "no node $k (N=$N)"
    pid="$(node_pid "$k")"
    [ -n "$pid" ] || die "node $k is not running"
    # The process group (mariadbd is its leader, see launch) also holds an SST script or rsync
    # daemon it may be running; left alive, they would keep the node's SST port.
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"
    for ((i = 0; i < 40; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.25
    done
    say "node $k: killed with SIGKILL (pid $pid)"
}

cmd_restart() { # K
    local k="$1" other="" j
    load_env
    [ "$(id -u)" = 0 ] || die "run as root"
    [[ "$k" =~ ^[0-9]+$ ]] && [ "$k" -ge 1 ] && [ "$k" -le "$N" ] || die "no node $k (N=$N)"
    [ -z "$(node_pid "$k")" ] || die "node $k already runs"
    for j in $(seq 1 "$N"); do
        [ "$j" != "$k" ] && [ -n "$(node_pid "$j")" ] && [[ "$(wsrep_state "$j")" == *" Primary" ]] &&
            { other="$j"; break; }
    done
    [ -n "$other" ] ||
        die "no other node runs in a Primary component: '$0 stop $DIR', then '$0 start $DIR' (bootstraps from the most advanced node)"
    # A joiner keeps safe_to_bootstrap: 0 and its grastate.dat as the crash left it; only the
    # position matters, recovered from InnoDB when grastate.dat lost it (seqno -1).
    local opt
    opt="$(start_position_opt "$k")"
    # shellcheck disable=SC2086
    launch "$k" $opt
    wait_cluster
}

cmd_ports() {
    local k
    load_env
    for k in $(seq 1 "$N"); do echo "$k $(sql_port "$k") $(sock "$k")"; done
}

[ $# -ge 2 ] || usage
cmd="$1"
DIR="$2"
shift 2
case "$cmd" in
start) cmd_start "$@" ;;
stop | status | ports)
    [ -d "$DIR" ] || die "no directory $DIR"
    DIR="$(cd "$DIR" && pwd)"
    "cmd_$cmd"
    ;;
kill | restart)
    [ $# -eq 1 ] || usage
    [ -d "$DIR" ] || die "no directory $DIR"
    DIR="$(cd "$DIR" && pwd)"
    "cmd_$cmd" "$1"
    ;;
*) usage ;;
esac
