#!/usr/bin/env bash
# Regenerates the Go-made metadata fixtures in this directory.
#
# Starts the reference Go pair (Debian notary-server + notary-signer 0.7.0, MariaDB) with
# the repository's tests/harness/start-pair.sh on non-default ports and databases, drives the
# stock `notary` CLI to build repositories, downloads every served file with curl, and stops
# the pair again. Needs root (the harness does), notary, openssl, curl
# (tests/harness/install.sh); MariaDB is started if it is not running.
#
# Usage: make-fixtures.sh            (writes next to this script)
# Env:   KEEP_WORKDIR [0]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
HARNESS="$(cd "$HERE/../../../../tests/harness" && pwd)"
WORKDIR="$(mktemp -d /tmp/notary-fixtures.XXXXXX)"
SERVER_PORT=4551
SIGNER_PORT=7951
SERVER="https://127.0.0.1:$SERVER_PORT"
CA="$WORKDIR/certs/root-ca.crt"
TRUST="$WORKDIR/trust"
CFG="$WORKDIR/client-config.json"

export NOTARY_ROOT_PASSPHRASE=fixture-root-passphrase
export NOTARY_TARGETS_PASSPHRASE=fixture-targets-passphrase
export NOTARY_SNAPSHOT_PASSPHRASE=fixture-snapshot-passphrase
export NOTARY_DELEGATION_PASSPHRASE=fixture-delegation-passphrase

log() { echo "make-fixtures: $*"; }

start() { # start KEY_ALGORITHM
    SERVER_PORT=$SERVER_PORT SIGNER_PORT=$SIGNER_PORT SERVER_DB=fixture_server \
        SIGNER_DB=fixture_signer RESET_DB=1 KEY_ALGORITHM="$1" \
        "$HARNESS/start-pair.sh" "$WORKDIR" >"$WORKDIR/start-$1.log"
}
stop() { "$HARNESS/stop-pair.sh" "$WORKDIR" >/dev/null || true; }
cleanup() {
    stop
    if [ "${KEEP_WORKDIR:-0}" = 1 ]; then log "workdir kept: $WORKDIR"; else rm -rf "$WORKDIR"; fi
}
trap cleanup EXIT

nt() { notary -c "$CFG" -s "$SERVER" --tlscacert "$CA" -d "$TRUST" "$@" </dev/null; }
nt_yes() { echo yes | notary -c "$CFG" -s "$SERVER" --tlscacert "$CA" -d "$TRUST" "$@"; }

# fetch GUN REMOTE_NAME LOCAL_PATH: download one served file verbatim; fails on non-200.
fetch() {
    local url="$SERVER/v2/$1/_trust/tuf/$2" out="$3" code
    mkdir -p "$(dirname "$out")"
    code="$(curl -sS --cacert "$CA" -o "$out" -w '%{http_code}' "$url")"
    [ "$code" = 200 ] || { echo "make-fixtures: GET $2 for $1: HTTP $code" >&2; rm -f "$out"; return 1; }
}

# dump GUN DIR ROLES...: every root version, the current files, and the given delegations.
dump() {
    local gun="$1" dir="$HERE/$2" v=1; shift 2
    rm -rf "$dir"
    mkdir -p "$dir"
    printf '%s\n' "$gun" >"$dir/gun.txt"
    while fetch "$gun" "$v.root.json" "$dir/$v.root.json" 2>/dev/null; do v=$((v + 1)); done
    [ "$v" -gt 1 ] || { echo "no root for $gun" >&2; exit 1; }
    for role in root targets snapshot timestamp "$@"; do
        fetch "$gun" "$role.json" "$dir/$role.json"
    done
    # The oldest stored snapshot (clients start numbering at 1 or 2): client-signed here.
    for sv in 1 2 3; do
        fetch "$gun" "$sv.snapshot.json" "$dir/first-snapshot.json" 2>/dev/null && break
    done
    [ -f "$dir/first-snapshot.json" ] || { echo "no early snapshot for $gun" >&2; exit 1; }
    fetch "$gun" timestamp.key "$dir/timestamp.key"
    log "wrote $dir ($((v - 1)) root versions)"
}

make_payloads() {
    P="$WORKDIR/payloads"
    mkdir -p "$P"
    printf 'hello from the Go notary fixtures\n' >"$P/a.txt"
    printf 'second target\n' >"$P/b.txt"
    printf 'delegated target\n' >"$P/c.txt"
}

cert_for() { # cert_for NAME CN ALG: key + self-signed cert (ecdsa P-256 or rsa 2048)
    local key="$WORKDIR/$1.key" crt="$WORKDIR/$1.crt"
    case "$3" in
        ecdsa) openssl ecparam -genkey -name prime256v1 -noout -out "$key" 2>/dev/null ;;
        rsa) openssl genrsa -out "$key" 2048 2>/dev/null ;;
    esac
    # Slashes in the CN (GUNs) must be escaped in openssl's -subj syntax.
    # OpenSSL 3 marks -x509 certificates as CAs by default; Notary needs a leaf.
    openssl req -new -x509 -key "$key" -sha256 -days 3650 -subj "/CN=${2//\//\\/}" \
        -addext "basicConstraints=critical,CA:FALSE" -addext "keyUsage=digitalSignature,keyEncipherment" \
        -addext "extendedKeyUsage=codeSigning" -out "$crt"
}

printf '{"remote_server":{"url":"%s","root_ca":"%s"}}\n' "$SERVER" "$CA" >"$CFG"
make_payloads

###########################################################################################
log "starting reference pair (ecdsa)"
start ecdsa

# 1. A repository exercising names, delegations and every server-side key rotation.
GUN=example.com/fixtures/app
nt init -p "$GUN"
nt add -p "$GUN" plain.txt "$P/a.txt"
nt add -p "$GUN" 'html <b>&amp; name' "$P/b.txt"
nt add -p "$GUN" 'café 😀 ünïcödé' "$P/a.txt"
nt add -p "$GUN" "line$(printf '\xe2\x80\xa8')separator" "$P/b.txt"
nt add -p "$GUN" 'with space/and "quotes" \ backslash' "$P/a.txt"

cert_for releases releases ecdsa
cert_for rsadeleg rsadeleg rsa
nt delegation add -p "$GUN" targets/releases "$WORKDIR/releases.crt" --all-paths
nt delegation add -p "$GUN" targets/rsa "$WORKDIR/rsadeleg.crt" --paths rsa/
nt key import "$WORKDIR/releases.key" -r targets/releases
nt key import "$WORKDIR/rsadeleg.key" -r targets/rsa
nt add -p "$GUN" rel/app "$P/c.txt" --roles targets/releases
nt add -p "$GUN" 'rsa/<signed>' "$P/c.txt" --roles targets/rsa

# Snapshot moves to the server (root v2), the timestamp key rotates (root v3), the root
# key rotates (root v4, signed by old and new root keys); then one more publish so the
# server generates the snapshot itself.
nt key rotate "$GUN" snapshot -r
nt key rotate "$GUN" timestamp -r
nt_yes key rotate "$GUN" root
nt add -p "$GUN" after-rotation.txt "$P/b.txt"
dump "$GUN" example.com_fixtures_app targets/releases targets/rsa

# 2. A repository whose root key is an imported RSA certificate (rsa-x509, rsapss).
GUN2=example.com/fixtures/rsa-root
cert_for rsaroot "$GUN2" rsa
# The CLI only imports encrypted root keys (PBES2, PBKDF2-HMAC-SHA1, AES-256-CBC).
openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA1 -in "$WORKDIR/rsaroot.key" -out "$WORKDIR/rsaroot.enc.key" \
    -passout "pass:$NOTARY_ROOT_PASSPHRASE"
mv "$WORKDIR/rsaroot.enc.key" "$WORKDIR/rsaroot.key"
nt init -p "$GUN2" --rootkey "$WORKDIR/rsaroot.key" --rootcert "$WORKDIR/rsaroot.crt"
nt add -p "$GUN2" plain.txt "$P/a.txt"
dump "$GUN2" example.com_fixtures_rsa-root

stop

###########################################################################################
log "starting reference pair (ed25519)"
start ed25519

# 3. Server-held keys are ed25519 (eddsa signatures on timestamp and snapshot).
GUN3=example.com/fixtures/ed25519
nt init -p "$GUN3"
nt key rotate "$GUN3" snapshot -r
nt add -p "$GUN3" plain.txt "$P/a.txt"
dump "$GUN3" example.com_fixtures_ed25519

log "done"
