#!/usr/bin/env bash
# Sign latency and key-creation rate through gRPC with mutual TLS, for our notary-signer and
# the Go notary-signer, in the same run, on the same MariaDB.
#
# Usage: scripts/bench-signer.sh [SECONDS_PER_PHASE] [CONCURRENCY]   (as root; needs the
# packages tests/harness/install.sh installs). Prints one line per signer and phase.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECS="${1:-10}"; CONC="${2:-8}"
HARNESS="$(pwd)/tests/harness"
cargo build --release --locked -q -p notary-signer -p notary-bench
BIN="${CARGO_TARGET_DIR:-$(pwd)/target}/release"
W="$(mktemp -d)"
trap '"$HARNESS/stop-pair.sh" "$W/go" >/dev/null 2>&1; "$HARNESS/stop-pair.sh" "$W/rs" >/dev/null 2>&1; rm -rf "$W"' EXIT
"$HARNESS/start-mariadb.sh" >/dev/null
SERVER_PORT=24601 SIGNER_PORT=27601 SERVER_DB=bsig_go_server SIGNER_DB=bsig_go_signer RESET_DB=1 \
    "$HARNESS/start-pair.sh" "$W/go" >/dev/null
SERVER_PORT=24602 SIGNER_PORT=27602 SERVER_DB=bsig_rs_server SIGNER_DB=bsig_rs_signer RESET_DB=1 \
    NOTARY_SIGNER_BIN="$BIN/notary-signer" "$HARNESS/start-pair.sh" "$W/rs" >/dev/null
for impl in go rs; do
    port=27601; [ "$impl" = rs ] && port=27602
    "$BIN/signer-bench" --addr "127.0.0.1:$port" --ca "$W/$impl/certs/root-ca.crt" \
        --cert "$W/$impl/certs/notary-server-client.crt" --key "$W/$impl/certs/notary-server-client.key" \
        --seconds "$SECS" --concurrency "$CONC" --label "$impl-signer"
    echo "$impl-signer peak RSS: $(grep VmHWM "/proc/$(cat "$W/$impl/signer.pid")/status" | awk '{print $2, $3}')"
done
