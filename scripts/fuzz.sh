#!/usr/bin/env bash
# `npm run fuzz`: the protocol fuzzers of crates/fuzz for longer than `npm test` runs them.
# FUZZ_SECONDS (default 600) is each target's time after replaying its committed corpus
# (crates/fuzz/tests/__fuzz__/<target>/corpus). A failure prints the input and its
# BOLERO_RANDOM_SEED: set that variable to replay it, and commit the input to the corpus once
# fixed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/setup.sh
source scripts/setup.sh

seconds=${FUZZ_SECONDS:-600}
# Debug build on purpose: overflow checks and debug assertions are part of what is checked.
BOLERO_RANDOM_TEST_TIME_MS=$((seconds * 1000)) cargo test -p ferrosync-fuzz -- --nocapture
