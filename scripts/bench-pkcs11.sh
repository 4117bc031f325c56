#!/usr/bin/env bash
# Signs/s and latency of our notary-signer with its keys in a PKCS#11 token (SoftHSM2)
# against the same signer on its SQLite store, in the same run: gRPC with mutual TLS from
# signer-bench, CreateKey then Sign phases, for ecdsa and ed25519.
#
# Usage: scripts/bench-pkcs11.sh [SECONDS_PER_PHASE] [CONCURRENCY]
#   (needs the packages tests/harness/install.sh installs; binds 127.0.0.1:27621-27622)
# Prints one line per store, algorithm and phase.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECS="${1:-10}"; CONC="${2:-8}"
MODULE="${PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}"
cargo build --release --locked -q -p notary-signer -p notary-bench
BIN="${CARGO_TARGET_DIR:-$(pwd)/target}/release"
W="$(mktemp -d)"
pids=()
cleanup() {
    for pid in ${pids[@]+"${pids[@]}"}; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$W"
}
trap cleanup EXIT
certs/make-pki.sh "$W/certs" >/dev/null
softhsm_conf="$(tests/harness/softhsm-token.sh "$W/softhsm" notary 1234)"

start_signer() { # NAME PORT PKCS11_JSON
    local name="$1" port="$2" pkcs11="$3"
    cat >"$W/$name.json" <<JSON
{
  "server": {"grpc_addr": "127.0.0.1:$port", "tls_cert_file": "certs/notary-signer.crt",
             "tls_key_file": "certs/notary-signer.key", "client_ca_file": "certs/root-ca.crt"},
  "storage": {"backend": "sqlite3", "db_url": "$name.db", "default_alias": "bench"},
  "logging": {"level": "error"}$pkcs11
}
JSON
    SOFTHSM2_CONF="$softhsm_conf" NOTARY_SIGNER_BENCH=bench-passphrase NOTARY_SIGNER_PKCS11_PIN=1234 \
        setsid "$BIN/notary-signer" -config "$W/$name.json" </dev/null >"$W/$name.log" 2>&1 &
    pids+=("$!")
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "bench-pkcs11: $name did not start:" >&2; cat "$W/$name.log" >&2; exit 1
}
start_signer sqlite 27621 ""
start_signer pkcs11 27622 ",
  \"pkcs11\": {\"module\": \"$MODULE\", \"token_label\": \"notary\", \"max_sessions\": $CONC}"

echo "# $(nproc) cores, $SECS s per phase, concurrency $CONC, SoftHSM $(softhsm2-util --version)"
for alg in ecdsa ed25519; do
    for store in sqlite pkcs11; do
        port=27621; [ "$store" = pkcs11 ] && port=27622
        "$BIN/signer-bench" --addr "127.0.0.1:$port" --ca "$W/certs/root-ca.crt" \
            --cert "$W/certs/notary-server-client.crt" --key "$W/certs/notary-server-client.key" \
            --seconds "$SECS" --concurrency "$CONC" --algorithm "$alg" --label "$store $alg"
    done
done
for store in sqlite pkcs11; do
    echo "$store signer peak RSS: $(grep VmHWM "/proc/${pids[$([ $store = sqlite ] && echo 0 || echo 1)]}/status" | awk '{print $2, $3}')"
done
