#!/usr/bin/env bash
# `npm run bench`: builds the wasm package and the server in release, bundles the benchmark page
# (bench/peers/: Ferrosync, the raw platform and the peers), serves it from a throwaway
# ferrosync-server, runs every scenario of bench/scenarios/ in headless Chromium (bench/run.mjs),
# writes bench/results/latest.json and generates BENCHMARKS.md and its charts (bench/report.mjs);
# then runs the REST connector benchmark (bench/rest.mjs).
# `npm run bench -- --quick` is a smoke test (small sizes, one repetition, a few minutes); its
# results and report go to target/bench/ instead, so the committed ones stay the full run's.
# BENCH_REPS (default 3) sets the repetitions; BENCH_ONLY=id,id runs some scenarios only and
# merges their results into the committed ones (the report names the scenarios of earlier runs).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

for arg in "$@"; do
  case $arg in
    --quick)
      export BENCH_QUICK=1 BENCH_REST_CREATES=${BENCH_REST_CREATES:-100}
      ;;
    *)
      echo "usage: npm run bench [-- --quick]" >&2
      exit 2
      ;;
  esac
done

# shellcheck source=scripts/setup.sh
source scripts/setup.sh

# shellcheck source=scripts/package.sh
source scripts/package.sh
build_package release

echo "==> building ferrosync-server (release)" >&2
cargo build --quiet --release -p ferrosync-server

out="$PWD/target/bench"
www="$out/www"
rm -rf "$www"
# The bench's own Vite config: module workers, so PowerSync's and SQLite's workers and wasm are
# bundled from node_modules.
echo "==> bundling bench/peers into $www/peers" >&2
FERROSYNC_PKG=$package_dir npx --no-install vite build bench/peers --config bench/vite.config.mjs \
  --outDir "$www/peers"
if [ "${BENCH_QUICK:-}" = 1 ]; then
  results="$out/results/latest.json" report="$out/BENCHMARKS.md"
else
  results="$PWD/bench/results/latest.json" report="$PWD/BENCHMARKS.md"
fi

work=$(mktemp -d)
server=
stop() {
  if [ -n "$server" ]; then
    kill -TERM "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap stop EXIT

# shellcheck source=scripts/server.sh
source scripts/server.sh
# Each scenario gets its own tenant, so one's documents never reach another's clients: the
# runner signs a JWT per tenant with this secret.
jwt_secret=$(random_hex)
port=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => {
  console.log(s.address().port); s.close(); });')
NO_COLOR=1 target/release/ferrosync-server --listen "127.0.0.1:$port" --db "sqlite://$work/bench.db" \
  --static "$www" --jwt-secret "$jwt_secret" >"$out/server.log" 2>&1 &
server=$!

if ! wait_healthy "127.0.0.1:$port" "$server"; then
  echo "ferrosync-server did not become healthy on 127.0.0.1:$port" >&2
  cat "$out/server.log" >&2
  exit 1
fi

echo "==> running the benchmarks in headless Chromium" >&2
status=0
# A run of some scenarios (BENCH_ONLY, not --quick) merges into the results there; any other
# run starts from none.
if [ -z "${BENCH_ONLY:-}" ] || [ -n "${BENCH_QUICK:-}" ]; then
  rm -f "$results"
fi
BENCH_URL="http://127.0.0.1:$port" BENCH_JWT_SECRET="$jwt_secret" BENCH_RESULTS="$results" BENCH_PKG="$(realpath "$package_dir")" \
  node bench/run.mjs || status=$?
if [ -f "$results" ]; then
  node bench/report.mjs "$results" "$report"
fi

if [ -z "${BENCH_ONLY:-}" ]; then
  echo "==> running the REST connector benchmark" >&2
  BENCH_URL="http://127.0.0.1:$port" BENCH_REST_OUT="$out/rest.json" node bench/rest.mjs
fi
exit "$status"
