#!/usr/bin/env bash
# Runs every check and test of the project on a fresh Debian machine with the Rust toolchain:
# installs what is missing (MariaDB, PostgreSQL, the Go notary peer, Docker engine + registry,
# MySQL and PostgreSQL client headers, Chromium and Playwright), starts MariaDB and PostgreSQL (127.0.0.1:5433), then
# runs fmt, clippy, the release build the end-to-end tests drive, and `cargo test --workspace`
# (unit, integration, MariaDB, PostgreSQL, peer suites).
#
# Usage: scripts/test.sh            (as root; CI runs exactly this via .ci/run)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
HARNESS="$ROOT/tests/harness"
step() { echo; echo "=== $* ($(date +%T))"; }
# A build from scratch gains nothing from incremental caches (about 3 GB here).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
disk() { df -h "${CARGO_TARGET_DIR:-$ROOT/target}" 2>/dev/null | tail -1 || true; }

step "system packages"
mkdir -p "${CARGO_TARGET_DIR:-$ROOT/target}"
echo "disk before the build: $(disk)"
trap 'echo "disk at exit: $(disk)"' EXIT
"$HARNESS/install.sh"

step "MariaDB"
"$HARNESS/start-mariadb.sh"
mariadb -uroot <<'SQL'
CREATE USER IF NOT EXISTS 'notary_test'@'127.0.0.1' IDENTIFIED BY 'notary_test_pw';
CREATE USER IF NOT EXISTS 'notary_test'@'localhost' IDENTIFIED BY 'notary_test_pw';
GRANT ALL PRIVILEGES ON *.* TO 'notary_test'@'127.0.0.1';
GRANT ALL PRIVILEGES ON *.* TO 'notary_test'@'localhost';
FLUSH PRIVILEGES;
SQL
export NOTARY_TEST_MYSQL_URL="mysql://notary_test:notary_test_pw@127.0.0.1:3306"

step "PostgreSQL"
"$HARNESS/start-postgres.sh"
"$HARNESS/pg-psql.sh" -q -v ON_ERROR_STOP=1 <<'SQL'
DO $$BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'notary_test') THEN
    CREATE ROLE notary_test LOGIN SUPERUSER PASSWORD 'notary_test_pw';
  END IF;
END$$;
SQL
export NOTARY_TEST_POSTGRES_URL="postgres://notary_test:notary_test_pw@127.0.0.1:5433?sslmode=disable"
export NOTARY_TEST_POSTGRES_CA="/var/lib/notary-test-pg/tls/root-ca.crt"
# The cluster is up: the PostgreSQL tests must run, not skip.
export NOTARY_TEST_REQUIRE_POSTGRES=1
# install.sh put SoftHSM2 and OpenSC here: the PKCS#11 tests must run, not skip.
export NOTARY_TEST_REQUIRE_SOFTHSM=1
# ... and Chromium with Playwright: the console browser test must run, not skip.
export NOTARY_TEST_REQUIRE_CHROMIUM=1

step "cargo fmt"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "release build (driven by the end-to-end tests)"
cargo build --release --locked -p notary-signer -p notary-server -p notary-migrate -p notary-log

step "cargo test"
cargo test --workspace --locked --no-fail-fast -- --test-threads=2
