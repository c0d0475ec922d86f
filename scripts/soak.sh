#!/usr/bin/env bash
# `npm run soak`: the chaos soak (tests/soak/soak.mjs) for SOAK_SECONDS (default 1800), split
# between one server node on SQLite and two nodes on a throwaway PostgreSQL cluster. Builds the
# server and the package (debug builds, as the end-to-end tests use), writes
# target/soak/report.json and prints the table. SOAK_SEED repeats a run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/setup.sh
source scripts/setup.sh
# shellcheck source=scripts/package.sh
source scripts/package.sh
# shellcheck source=scripts/postgres.sh
source scripts/postgres.sh
trap stop_postgres EXIT

cargo build --quiet -p ferrosync-server
www=target/soak/www
mkdir -p "$www"
build_package dev "$www/pkg"
cp tests/e2e/page.html tests/e2e/page.js "$www/"
start_postgres
FERROSYNC_TEST_POSTGRES="$POSTGRES_URL" node tests/soak/soak.mjs \
  "${CARGO_TARGET_DIR:-target}/debug/ferrosync-server" "$www" "${SOAK_SECONDS:-1800}" \
  target/soak/report.json
