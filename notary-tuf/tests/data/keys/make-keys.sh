#!/usr/bin/env bash
# Regenerates the static key/certificate material used by notary-tuf tests for the cases
# the Rust crates in the tree cannot produce themselves (RSA keys, SHA-1 certificate
# signatures, P-384 signatures over SHA-256). Needs only openssl.
set -euo pipefail
cd "$(dirname "$0")"
printf 'notary test message' > msg.txt

rsa() { # rsa BITS: PKCS#1 DER private key, SPKI DER and PEM public key, self-signed cert
    openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:$1" -out "rsa$1.key.pem" 2>/dev/null
    openssl rsa -in "rsa$1.key.pem" -traditional -outform DER -out "rsa$1.pkcs1.der" 2>/dev/null
    openssl pkey -in "rsa$1.key.pem" -pubout -outform DER -out "rsa$1.spki.der"
    openssl pkey -in "rsa$1.key.pem" -pubout -out "rsa$1.pub.pem"
    openssl req -new -x509 -key "rsa$1.key.pem" -sha256 -days 36500 -subj "/CN=example.com\/rsa" \
        -addext "basicConstraints=critical,CA:FALSE" -addext "extendedKeyUsage=codeSigning" \
        -out "rsa$1.crt.pem"
    # RSASSA-PSS, SHA-256, MGF1-SHA-256, salt 32 over msg.txt (what Notary's rsapss expects)
    openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 \
        -sign "rsa$1.key.pem" -out "rsa$1.pss.sig" msg.txt
    rm "rsa$1.key.pem"
}
rsa 2048
rsa 1024   # too small for Notary

# ECDSA P-256 certificate signed with ecdsa-with-SHA1 (rejected by Notary)
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out sha1.key.pem
openssl req -new -x509 -key sha1.key.pem -sha1 -days 36500 -subj "/CN=example.com\/sha1" \
    -addext "basicConstraints=critical,CA:FALSE" -out sha1.crt.pem
rm sha1.key.pem

# ECDSA P-384: raw r||s signature over SHA-256 of msg.txt (Go always uses SHA-256), hex
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out p384.key.pem
openssl pkey -in p384.key.pem -pubout -outform DER -out p384.spki.der
openssl dgst -sha256 -sign p384.key.pem -out p384.sig.der msg.txt
openssl asn1parse -inform DER -in p384.sig.der | awk -F: '/INTEGER/ {print $NF}' |
    while read -r h; do printf '%096s' "$h" | tr ' ' 0; done > p384.sig.hex
rm p384.key.pem p384.sig.der
