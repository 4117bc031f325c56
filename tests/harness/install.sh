#!/usr/bin/env bash
# Installs every Debian package the end-to-end tests and the harness scripts need, skipping
# what is already installed (the apt work is done by scripts/ensure-packages.sh).
#
#   notary              Go notary-server / notary-signer 0.7 (the reference pair) and the
#                       stock `notary` CLI the conformance suite drives
#   mariadb-server/-client   the database of the MariaDB stacks
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
#
# Usage: tests/harness/install.sh [EXTRA_PKG...]      (as root, or with sudo)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

packages=(
    notary
    mariadb-server mariadb-client
    postgresql
    openssl curl jq
    docker.io docker-registry busybox-static docker-compose
    default-libmysqlclient-dev pkg-config
    libpq-dev
    softhsm2 opensc
)
exec "$repo/scripts/ensure-packages.sh" "${packages[@]}" "$@"
