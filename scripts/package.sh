#!/usr/bin/env bash
# Builds the package users import into pkg/: wasm-pack in release, then wasm-opt -Oz from the
# npm package `binaryen` (wasm-pack cannot download its own binaryen here). Sourced by
# scripts/start.sh and scripts/bench.sh after scripts/setup.sh.
set -euo pipefail

echo "==> building the wasm package (wasm-pack release, wasm-opt -Oz)" >&2
# Only the root package builds for wasm32: default-members are the native crates.
wasm-pack --log-level warn build --target web --release --out-dir pkg -- --quiet -p ferrosync
npx --no-install wasm-opt -Oz --strip-debug --strip-producers \
  pkg/ferrosync_bg.wasm -o pkg/ferrosync_bg.wasm
