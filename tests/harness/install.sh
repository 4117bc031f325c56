#!/usr/bin/env bash
# Installs every Debian package the end-to-end tests and the harness scripts need, skipping
# what is already installed (the apt work is done by scripts/ensure-packages.sh).
#
#   notary              Go notary-server / notary-signer 0.7 (the reference pair) and the
#                       stock `notary` CLI the conformance suite drives
#   mariadb-server/-client   the database of the MariaDB stacks
#   galera-4 rsync      the local Galera cluster of scripts/galera.sh (rsync: its state transfer)
#   postgresql          the database of the PostgreSQL stacks (start-postgres.sh runs its own
#                       cluster on 127.0.0.1:5433, never Debian's default one)
#   openssl curl jq     PKI, raw HTTP checks, JSON inspection
#   docker.io docker-registry busybox-static docker-compose
#                       Docker Content Trust tests (private engine + local registry) and
#                       the compose tests
#   default-libmysqlclient-dev pkg-config   building the MySQL driver of our crates
#   libpq-dev           building diesel's PostgreSQL driver (libpq)
#   softhsm2 opensc     the PKCS#11 token of the HSM signer tests (SoftHSM2) and pkcs11-tool,
#                       which checks the token's objects independently of our code
#   chromium fonts-dejavu-core
#                       the headless browser of the admin console test (tests/tests/console.rs),
#                       and a font for its screenshots
#
# Then Playwright (playwright-core, pinned in tests/harness/console/package-lock.json) with the
# machine's Node.js 20+ and npm: `npm ci` there when its node_modules is missing. Playwright
# drives Debian's Chromium and downloads no browser of its own.
#
# Usage: tests/harness/install.sh [EXTRA_PKG...]      (as root, or with sudo)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

packages=(
    notary
    mariadb-server mariadb-client galera-4 rsync
    postgresql
    openssl curl jq
    docker.io docker-registry busybox-static docker-compose
    default-libmysqlclient-dev pkg-config
    libpq-dev
    softhsm2 opensc
    chromium fonts-dejavu-core
)
"$repo/scripts/ensure-packages.sh" "${packages[@]}" "$@"

console="$repo/tests/harness/console"
if [ ! -f "$console/node_modules/playwright-core/package.json" ]; then
    command -v npm >/dev/null || { echo "install: npm is missing (Node.js 20+ with npm)" >&2; exit 1; }
    echo "install: npm ci in tests/harness/console"
    npm ci --prefix "$console" --ignore-scripts --no-audit --no-fund
fi
