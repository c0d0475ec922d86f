#!/usr/bin/env bash
# THE test command (`npm test`): installs what is missing, then runs every check and test suite.
# Fails at the first failing step; each runner's own summary lines stay visible.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

started=$SECONDS
# Keep a copy of everything printed, to total the test counts at the end.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
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
cargo clippy --quiet -p ferrosync --target wasm32-unknown-unknown --all-targets -- -D warnings

section "cargo test (native: core + server)"
cargo test --quiet --workspace

section "browser tests (wasm-pack test in headless Chromium)"
# Only the root package builds for wasm32: default-members are the native crates.
# webdriver.json passes Chromium the flags it needs here (running as root, no network).
wasm-pack --log-level warn test --headless --chrome --chromedriver "$(command -v chromedriver)" \
  -- -p ferrosync

if [ -f js/tsconfig.json ]; then
  section "TypeScript (tsc --noEmit)"
  npx --no-install tsc --noEmit -p js
fi

section "all checks passed"
# One line with the total over every runner above ("test result: ok. N passed; M failed; ...").
awk '/test result:/ { for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "summary: %d passed, %d failed\n", p, f }' "$log"
