#!/usr/bin/env bash
# `npm run bench`: builds the wasm package and the server in release, serves bench/ and pkg/
# from a throwaway ferrosync-server, and runs bench/run.mjs, which measures the engine beside
# raw IndexedDB in headless Chromium, prints a table and writes target/bench/results.json.
# BENCH_ROWS (default 100000) sizes the initial-sync and live-query scenarios; BENCH_REPS
# (default 3) sets the repetitions whose median is reported.
# `npm run bench -- --quick` is a smoke test: small sizes, one repetition, a few minutes.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

for arg in "$@"; do
  case $arg in
    --quick)
      export BENCH_QUICK=1 BENCH_ROWS=${BENCH_ROWS:-2000} BENCH_REPS=${BENCH_REPS:-1}
      export BENCH_REST_CREATES=${BENCH_REST_CREATES:-100}
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
build_package pkg release

echo "==> building ferrosync-server (release)" >&2
cargo build --quiet --release -p ferrosync-server

out="$PWD/target/bench"
www="$out/www"
rm -rf "$www"
mkdir -p "$www"
cp -R bench/. "$www/"
cp -R pkg "$www/pkg"
# The peers' page: Ferrosync and the engines users compare it with, bundled in one page.
build_app bench/peers target/bench/www/peers pkg

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
BENCH_URL="http://127.0.0.1:$port" BENCH_JWT_SECRET="$jwt_secret" BENCH_OUT="$out/results.json" BENCH_PKG="$www/pkg" \
  node bench/run.mjs

echo "==> running the peer benchmarks in headless Chromium" >&2
BENCH_URL="http://127.0.0.1:$port" BENCH_PEERS_OUT="$out/peers.json" node bench/peers.mjs

echo "==> measuring bundle sizes beside the peers" >&2
BENCH_BUNDLES_OUT="$out/bundles.json" node bench/bundles.mjs

echo "==> running the REST connector benchmark" >&2
BENCH_URL="http://127.0.0.1:$port" BENCH_REST_OUT="$out/rest.json" node bench/rest.mjs
