#!/usr/bin/env bash
# THE test command (`npm test`): installs what is missing, then runs every check and test suite.
# Fails at the first failing step; each runner's own summary lines stay visible.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

started=$SECONDS
# Keep a copy of everything printed, to total the test counts at the end.
log=$(mktemp)
# The sync server the browser tests talk to (started below): its process and its files.
server_pid=
server_dir=
# The PostgreSQL cluster of the server's tests (start_postgres, below).
# shellcheck source=scripts/postgres.sh
source scripts/postgres.sh
cleanup() {
  local status=$?
  stop_postgres
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    if [ "$status" -ne 0 ]; then
      echo "--- ferrosync-server log ---"
      cat "$server_dir/server.log"
    fi
  fi
  rm -rf "$log" "$server_dir"
}
trap cleanup EXIT
exec > >(tee "$log") 2>&1
section() { printf '\n==> %s  [%ss]\n' "$*" "$((SECONDS - started))"; }

section "setup (scripts/setup.sh)"
# shellcheck source=scripts/setup.sh
source scripts/setup.sh

section "cargo fmt --check"
cargo fmt --all -- --check

section "cargo clippy (native workspace)"
cargo clippy --quiet --workspace --all-targets -- -D warnings

section "cargo clippy (ferrosync for wasm32)"
cargo clippy --quiet -p ferrosync --target wasm32-unknown-unknown --all-targets --all-features -- -D warnings

section "PostgreSQL for the server's tests (a throwaway cluster)"
start_postgres
# The server's tests run each on SQLite and on a schema of their own on this cluster; the
# end-to-end tests make a database of their own, and stop and start the cluster.
export FERROSYNC_TEST_POSTGRES="$POSTGRES_URL" FERROSYNC_TEST_POSTGRES_DIR="$POSTGRES_DIR"

section "cargo test (native: core, server on SQLite and PostgreSQL, 15 s of each fuzz target)"
cargo test --quiet --workspace

section "sync server for the browser tests"
# The debug build: `cargo test` above has just built it, while the release profile (LTO, one
# codegen unit) would add about 95 s to a fresh checkout and 40 s after every server change.
cargo build --quiet -p ferrosync-server
server_dir=$(mktemp -d)
# shellcheck source=scripts/server.sh
source scripts/server.sh
dev_token=$(random_hex)
jwt_secret=$(random_hex)
# Two distinct free loopback ports: the server's, and the test runner page's (whose origin,
# http://127.0.0.1:PORT, the server allows). They are taken below Linux's ephemeral range
# (32768+), so no outgoing connection takes the runner's port before the runner binds it.
read -r server_port runner_port < <(python3 -c '
import random, socket
ports = []
while len(ports) < 2:
    port = random.randrange(20000, 32768)
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            continue
    if port not in ports:
        ports.append(port)
print(*ports)')
NO_COLOR=1 "${CARGO_TARGET_DIR:-target}/debug/ferrosync-server" --listen "127.0.0.1:$server_port" \
  --db "sqlite://$server_dir/test.db" --dev-token "$dev_token" --jwt-secret "$jwt_secret" \
  --allowed-origin "http://127.0.0.1:$runner_port" >"$server_dir/server.log" 2>&1 &
server_pid=$!
if ! wait_healthy "127.0.0.1:$server_port" "$server_pid"; then
  echo "ferrosync-server did not become healthy on 127.0.0.1:$server_port"
  exit 1
fi
# What the browser tests are built with (read at compile time, by option_env! and build.rs):
# where wasm-bindgen-test-runner serves the test page, and the server they connect to.
browser_test_env=(
  WASM_BINDGEN_TEST_ADDRESS="127.0.0.1:$runner_port"
  FERROSYNC_TEST_SERVER="127.0.0.1:$server_port"
  FERROSYNC_TEST_DEV_TOKEN="$dev_token"
  FERROSYNC_TEST_JWT_SECRET="$jwt_secret"
)

# The plain commands: the root package is the wasm crate. webdriver.json gives each browser what
# it needs here (Chromium's flags as root without network, Firefox's prefs that keep it off
# Mozilla's services).
section "browser tests in headless Chromium (wasm-pack test --headless --chrome)"
env "${browser_test_env[@]}" wasm-pack test --headless --chrome
section "browser tests in headless Firefox (wasm-pack test --headless --firefox)"
env "${browser_test_env[@]}" wasm-pack test --headless --firefox
# With the server given, none may be ignored.
if grep -q '^test .* \.\.\. ignored' "$log"; then
  echo "browser tests were ignored although the server was given"
  exit 1
fi

section "end-to-end tests (Playwright: real tabs in headless Chromium)"
# The package as users load it (debug build: faster to make), beside the test pages; the demo
# app over it; and the React hook tests' page, with React's development build (under
# StrictMode, that build mounts, unmounts and mounts again, as apps under development do).
# Then the package as users install it: `npm run build`'s release build, packed.
e2e_www=target/e2e/www
mkdir -p "$e2e_www"
# shellcheck source=scripts/package.sh
source scripts/package.sh
build_package dev "$e2e_www/pkg"
cp tests/e2e/page.html tests/e2e/page.js "$e2e_www/"
build_app www target/e2e/demo "$e2e_www/pkg"
NODE_ENV=development build_app tests/react target/e2e/react "$e2e_www/pkg"
build_package release
tarball="$package_dir/$(cd "$package_dir" && npm pack --silent)"
node tests/e2e/run.mjs target/debug/ferrosync-server "$e2e_www" target/e2e/demo target/e2e/react \
  "$tarball"

section "chaos soak, 60 s (tests/soak/soak.mjs; npm run soak runs it longer)"
# Faults at random against real server processes (one node on SQLite, then two on PostgreSQL);
# fails unless every invariant holds. The report is in target/soak/report.json.
node tests/soak/soak.mjs target/debug/ferrosync-server "$e2e_www" 60 target/soak/report.json

section "API reference (docs/API.md is generated from the package's declarations)"
if ! node scripts/api-docs.mjs "$e2e_www/pkg" | diff -u docs/API.md -; then
  echo "docs/API.md is out of date: node scripts/api-docs.mjs $e2e_www/pkg > docs/API.md"
  exit 1
fi

section "TypeScript (tsc --noEmit)"
npx --no-install tsc --noEmit -p js
npx --no-install tsc --noEmit -p www
npx --no-install tsc --noEmit -p tests/react
# The declarations as users get them: embedded in wasm-bindgen's generated file.
npx --no-install tsc --noEmit --strict --lib ES2022,DOM --types "" "$e2e_www/pkg/ferrosync.d.ts"

section "all checks passed"
# One line with the total over every runner above ("test result: ok. N passed; M failed; ...").
awk '/test result:/ { for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "summary: %d passed, %d failed\n", p, f }' "$log"
