#!/usr/bin/env bash
# The server's load runs, BENCHMARKS.md's server section: builds the server and the load
# generator (crates/server/examples/load) in release, starts a throwaway PostgreSQL cluster
# (scripts/postgres.sh), runs the generator's suite (SQLite on one node beside PostgreSQL on
# two nodes: push throughput, 2,000 clients in tenants of 10 and 1,000 in one tenant at 1
# write/s each, then more clients until it stops holding), writes bench/results/server.json, and
# regenerates BENCHMARKS.md from the committed results. About 15 minutes on 2 cores.
# LOAD_SECONDS (default 60) sets how long each fixed-rate run writes.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/setup.sh
source scripts/setup.sh
# shellcheck source=scripts/postgres.sh
source scripts/postgres.sh
trap stop_postgres EXIT

echo "==> building ferrosync-server and the load generator (release)" >&2
cargo build --quiet --release -p ferrosync-server --bin ferrosync-server --example load
target="${CARGO_TARGET_DIR:-target}/release"

start_postgres
postmaster=$(head -n 1 "$POSTGRES_DIR/data/postmaster.pid")
"$target/examples/load" suite --server-bin "$target/ferrosync-server" \
  --postgres "$POSTGRES_URL" --postgres-pid "$postmaster" --seconds "${LOAD_SECONDS:-60}" \
  --json bench/results/server.json
node bench/report.mjs bench/results/latest.json BENCHMARKS.md
