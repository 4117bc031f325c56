#!/usr/bin/env bash
# Installs the Debian packages named on the command line that are not installed yet.
# Idempotent: prints one line and does nothing when all are present; refreshes the package
# lists only when apt does not know a package (or an install fails on stale lists).
#
# Usage: scripts/ensure-packages.sh PKG...      (as root, or with sudo available)
set -euo pipefail

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=()
for p in "$@"; do installed "$p" || missing+=("$p"); done
if [ "${#missing[@]}" -eq 0 ]; then
    echo "packages: all present ($*)"
    exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then
        SUDO=(sudo)
    else
        echo "packages: missing ${missing[*]}; install them as root: apt-get install ${missing[*]}" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
APT=("${SUDO[@]}" apt-get -q -o DPkg::Lock::Timeout=600)
for p in "${missing[@]}"; do
    if ! apt-cache show "$p" >/dev/null 2>&1; then
        echo "packages: refreshing package lists"
        "${APT[@]}" update
        break
    fi
done
echo "packages: installing ${missing[*]}"
if ! "${APT[@]}" install -y --no-install-recommends "${missing[@]}"; then
    # A superseded .deb answers 404 on stale lists: refresh once and retry.
    "${APT[@]}" update
    "${APT[@]}" install -y --no-install-recommends "${missing[@]}"
fi
for p in "${missing[@]}"; do
    installed "$p" || { echo "packages: $p is still missing" >&2; exit 1; }
done
