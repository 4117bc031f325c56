#!/usr/bin/env bash
# Publish throughput and latency of our notary-server with the transparency log off and on,
# in the same run, on the same MariaDB (two server + signer pairs, databases btl_off_* and
# btl_on_*), alternating off/on rounds; then the log's size per entry in MariaDB, scaled to
# a million entries.
#
# Usage: scripts/bench-tlog.sh [SECONDS_PER_ROUND] [ROUNDS] [PUBLISHERS]   (as root; needs
#        the packages tests/harness/install.sh installs). Binds 127.0.0.1:24481-24482 and
#        27981-27982; everything it starts is stopped by PID on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECS="${1:-8}"; ROUNDS="${2:-2}"; PUBLISHERS="${3:-16}"
HARNESS="$(pwd)/tests/harness"
cargo build --release --locked -q -p notary-server -p notary-signer -p notary-bench
BIN="${CARGO_TARGET_DIR:-$(pwd)/target}/release"
W="$(mktemp -d)"
trap '"$HARNESS/stop-pair.sh" "$W/off" >/dev/null 2>&1; "$HARNESS/stop-pair.sh" "$W/on" >/dev/null 2>&1; rm -rf "$W"' EXIT
"$HARNESS/start-mariadb.sh" >/dev/null
start() { # NAME SERVER_PORT SIGNER_PORT LOG
    SERVER_PORT="$2" SIGNER_PORT="$3" SERVER_DB="btl_$1_server" SIGNER_DB="btl_$1_signer" \
        RESET_DB=1 LOG_LEVEL=error TRANSPARENCY_LOG="$4" \
        NOTARY_SERVER_BIN="$BIN/notary-server" NOTARY_SIGNER_BIN="$BIN/notary-signer" \
        "$HARNESS/start-pair.sh" "$W/$1" >/dev/null
}
start off 24481 27981 0
start on 24482 27982 1
echo "# $(nproc) cores, $PUBLISHERS publishers on distinct GUNs, $SECS s per round"
for round in $(seq 1 "$ROUNDS"); do
    for side in off on; do
        port=24481; [ "$side" = on ] && port=24482
        printf 'round %s log %-3s ' "$round" "$side"
        "$BIN/notary-bench" publish --url "https://127.0.0.1:$port" --ca "$W/$side/certs/root-ca.crt" \
            --publishers "$PUBLISHERS" --seconds "$SECS" | tail -n 1
    done
done
sleep 2 # let the integrator catch up before measuring
mariadb -uroot -N -e "ANALYZE TABLE btl_on_server.tlog_leaves, btl_on_server.tlog_hashes, btl_on_server.tlog_state" >/dev/null
mariadb -uroot -N -e "
SELECT COUNT(*), SUM(leaf_index IS NULL) FROM btl_on_server.tlog_leaves;" | {
    read -r leaves pending
    bytes="$(mariadb -uroot -N -e "SELECT SUM(data_length + index_length) FROM information_schema.tables
        WHERE table_schema = 'btl_on_server' AND table_name LIKE 'tlog\\_%'")"
    echo "log: $leaves leaves ($pending not yet integrated), $bytes bytes in tlog_* tables" \
        "= $((bytes / (leaves > 0 ? leaves : 1))) bytes/entry" \
        "~ $(( bytes * 1000000 / (leaves > 0 ? leaves : 1) / 1048576 )) MiB per million entries"
}
