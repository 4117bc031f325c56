#!/usr/bin/env bash
# Builds and starts notary-signer and notary-server on embedded SQLite stores, with a
# development PKI made on first start under the data directory. Ctrl-C stops both.
#
# Usage: scripts/run.sh
# Env:   NOTARY_DATA_DIR [./notary-data]   configs, databases, certs, passphrase, logs
#        NOTARY_PORT [4443]  SIGNER_PORT [7899]  NOTARY_HOSTNAME [localhost]
#        ADMIN_PORT [4444]   the admin API and operator console (client certificate required:
#                            certs/notary-server-client.crt of the dev PKI)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
DATA="${NOTARY_DATA_DIR:-$ROOT/notary-data}"
PORT="${NOTARY_PORT:-4443}"
SIGNER_PORT="${SIGNER_PORT:-7899}"
ADMIN_PORT="${ADMIN_PORT:-4444}"
HOST="${NOTARY_HOSTNAME:-localhost}"

# The MySQL and PostgreSQL backends are compiled in (operators switch a config from SQLite to
# MySQL or PostgreSQL without a rebuild), so the build needs libmysqlclient's and libpq's
# headers and pkg-config; the binaries need libmariadb3 and libpq5 at run time (pulled in by
# the -dev packages). We install rather than make them optional: a default build that
# silently lacks the Go notary's databases would surprise operators more than one apt-get
# does. openssl makes the dev PKI, curl checks health.
"$ROOT/scripts/ensure-packages.sh" default-libmysqlclient-dev libpq-dev pkg-config openssl curl \
    ca-certificates
command -v cargo >/dev/null || { echo "run: cargo is required (the Rust toolchain, https://rustup.rs)" >&2; exit 1; }
echo "run: building release binaries (the first build compiles about 300 crates: 5-10 minutes on 2 cores)"
cargo build --release --locked -p notary-signer -p notary-server
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"

mkdir -p "$DATA"
chmod 0700 "$DATA"
"$ROOT/certs/make-pki.sh" "$DATA/certs" "DNS:$HOST" >/dev/null
if [ ! -s "$DATA/signer-passphrase" ]; then
    (umask 077; openssl rand -hex 24 >"$DATA/signer-passphrase")
fi

cat >"$DATA/signer-config.json" <<JSON
{
  "server": {
    "grpc_addr": "127.0.0.1:${SIGNER_PORT}",
    "tls_cert_file": "certs/notary-signer.crt",
    "tls_key_file": "certs/notary-signer.key",
    "client_ca_file": "certs/root-ca.crt"
  },
  "logging": { "level": "info" },
  "storage": { "backend": "sqlite3", "db_url": "signer.db", "default_alias": "default" }
}
JSON
cat >"$DATA/server-config.json" <<JSON
{
  "server": {
    "http_addr": "127.0.0.1:${PORT}",
    "tls_cert_file": "certs/notary-server.crt",
    "tls_key_file": "certs/notary-server.key"
  },
  "trust_service": {
    "type": "remote",
    "hostname": "127.0.0.1",
    "port": "${SIGNER_PORT}",
    "key_algorithm": "ecdsa",
    "tls_ca_file": "certs/root-ca.crt",
    "tls_client_cert": "certs/notary-server-client.crt",
    "tls_client_key": "certs/notary-server-client.key"
  },
  "logging": { "level": "info" },
  "storage": { "backend": "sqlite3", "db_url": "server.db" },
  "admin": { "http_addr": "127.0.0.1:${ADMIN_PORT}", "client_ca_file": "certs/root-ca.crt" }
}
JSON

pids=()
stop() {
    trap - INT TERM EXIT
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    echo "run: stopped"
    exit 0
}
trap stop INT TERM EXIT

# Each service in its own session: Ctrl-C reaches only this script, whose trap stops both in
# order (otherwise the services die first and the script reports "a service exited").
NOTARY_SIGNER_DEFAULT="$(cat "$DATA/signer-passphrase")" \
    setsid "$BIN/notary-signer" -config "$DATA/signer-config.json" >>"$DATA/signer.log" 2>&1 &
pids+=($!)
setsid "$BIN/notary-server" -config "$DATA/server-config.json" >>"$DATA/server.log" 2>&1 &
pids+=($!)

for _ in $(seq 1 120); do
    if curl -fsS --max-time 2 --cacert "$DATA/certs/root-ca.crt" \
        "https://127.0.0.1:${PORT}/_notary_server/health" >/dev/null 2>&1; then
        break
    fi
    for p in "${pids[@]}"; do
        kill -0 "$p" 2>/dev/null || { echo "run: a service exited; see $DATA/*.log" >&2; tail -n 5 "$DATA"/*.log >&2; exit 1; }
    done
    sleep 0.5
done

cat <<TXT
notary-server and notary-signer are running (data and logs in $DATA). Ctrl-C stops both.
export DOCKER_CONTENT_TRUST=1 DOCKER_CONTENT_TRUST_SERVER=https://${HOST}:${PORT}
mkdir -p ~/.docker/tls/${HOST}:${PORT} && cp $DATA/certs/root-ca.crt ~/.docker/tls/${HOST}:${PORT}/ca.crt
notary -s https://${HOST}:${PORT} --tlscacert $DATA/certs/root-ca.crt list <gun>
TXT
wait -n "${pids[@]}" || true
echo "run: a service exited; see $DATA/server.log and $DATA/signer.log" >&2
exit 1
