#!/usr/bin/env bash
# Makes a fresh SoftHSM2 token in a directory of its own, for one test or one signer.
#
# Usage: softhsm-token.sh DIR [LABEL] [USER_PIN] [SO_PIN]
#   DIR       made if needed; gets softhsm2.conf and tokens/ (any old tokens there go)
#   LABEL     token label [notary]
#   USER_PIN  [1234]        SO_PIN [5678]
# Prints one line: the SOFTHSM2_CONF path to export for the process that uses the token.
# Nothing outside DIR is touched: SoftHSM reads its config from SOFTHSM2_CONF only.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 DIR [LABEL] [USER_PIN] [SO_PIN]" >&2; exit 2; }
command -v softhsm2-util >/dev/null || {
    echo "softhsm-token: softhsm2-util not found (tests/harness/install.sh installs softhsm2)" >&2
    exit 1
}
mkdir -p "$1"
dir="$(cd "$1" && pwd)"
label="${2:-notary}" pin="${3:-1234}" so_pin="${4:-5678}"
rm -rf "$dir/tokens"
mkdir -p "$dir/tokens"
cat >"$dir/softhsm2.conf" <<CONF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
SOFTHSM2_CONF="$dir/softhsm2.conf" softhsm2-util --init-token --free --label "$label" \
    --pin "$pin" --so-pin "$so_pin" >/dev/null
echo "$dir/softhsm2.conf"
