#!/usr/bin/env bash
# Makes a development/test PKI for notary-server and notary-signer (ECDSA P-256, SHA-256):
#   root-ca.crt/.key            trust anchor for clients (notary --tlscacert, Docker's
#                               certs.d) and for the server<->signer mutual TLS
#   notary-server.crt/.key      HTTPS certificate of notary-server
#                               (SAN localhost, notary-server, 127.0.0.1, extra names)
#   notary-signer.crt/.key      gRPC certificate of notary-signer
#                               (SAN localhost, notary-signer, 127.0.0.1)
#   notary-server-client.crt/.key  client certificate notary-server presents to the signer
#
# Usage: certs/make-pki.sh OUTDIR [EXTRA_SERVER_SAN...]   (e.g. DNS:notary.example.com)
# Existing valid files are kept unless FORCE=1. Keys are unencrypted PKCS#8, mode 0600.
# For production, issue these from your own CA instead (see certs/README.md).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 OUTDIR [EXTRA_SERVER_SAN...]" >&2; exit 2; }
OUT="$1"; shift
EXTRA=""
for san in "$@"; do EXTRA="$EXTRA,$san"; done
mkdir -p "$OUT"; cd "$OUT"

if [ "${FORCE:-0}" != 1 ] && [ -s root-ca.crt ] &&
   openssl verify -CAfile root-ca.crt notary-server.crt notary-signer.crt notary-server-client.crt >/dev/null 2>&1; then
    echo "make-pki: certificates already present in $OUT (FORCE=1 to regenerate)"
    exit 0
fi
umask 077
newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

newkey root-ca.key
openssl req -x509 -new -key root-ca.key -sha256 -days 3650 \
    -subj "/O=Notary Dev/CN=Notary Dev Root CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" -out root-ca.crt

leaf() { # NAME CN SAN EKU
    local ext; ext="$(mktemp)"
    newkey "$1.key"
    openssl req -new -key "$1.key" -subj "/O=Notary Dev/CN=$2" -out "$1.csr"
    printf '%s\n' "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature,keyEncipherment" \
        "extendedKeyUsage=$4" "subjectAltName=$3" \
        "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid" >"$ext"
    openssl x509 -req -in "$1.csr" -CA root-ca.crt -CAkey root-ca.key \
        -set_serial "0x$(openssl rand -hex 16)" -days 825 -sha256 -extfile "$ext" \
        -out "$1.crt" 2>/dev/null
    rm -f "$1.csr" "$ext"
}
leaf notary-server notary-server "DNS:localhost,DNS:notary-server,IP:127.0.0.1$EXTRA" serverAuth
leaf notary-signer notary-signer "DNS:localhost,DNS:notary-signer,IP:127.0.0.1" serverAuth
leaf notary-server-client notary-server "DNS:notary-server" clientAuth
chmod 0644 ./*.crt; chmod 0600 ./*.key
openssl verify -CAfile root-ca.crt notary-server.crt notary-signer.crt notary-server-client.crt
echo "make-pki: wrote the dev PKI to $OUT"
