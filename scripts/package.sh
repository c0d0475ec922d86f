#!/usr/bin/env bash
# Defines build_package OUT_DIR release|dev: the package users import, in OUT_DIR.
#  - wasm-pack builds the engine (only the root package builds for wasm32: default-members are
#    the native crates); in release, wasm-opt -Oz from the npm package `binaryen` shrinks it
#    (wasm-pack cannot download its own binaryen here);
#  - tsc compiles the hand-written modules of js/src (package entry, connectors, test harness)
#    next to it, and the package's entry point becomes index.js.
# Sourced by scripts/start.sh, scripts/bench.sh and scripts/test.sh after scripts/setup.sh.

build_package() {
  local out=$1 profile=$2
  echo "==> building the package into $out ($profile)" >&2
  wasm-pack --log-level warn build "--$profile" --target web --out-dir "$out" -- --quiet -p ferrosync
  if [[ $profile == release ]]; then
    npx --no-install wasm-opt -Oz --strip-debug --strip-producers \
      "$out/ferrosync_bg.wasm" -o "$out/ferrosync_bg.wasm"
  fi
  npx --no-install tsc -p js/tsconfig.build.json --outDir "$out"
  node -e '
    const fs = require("fs");
    const file = process.argv[1] + "/package.json";
    const pkg = JSON.parse(fs.readFileSync(file, "utf8"));
    const modules = fs.readdirSync(process.argv[1]).filter((f) => /\.(js|d\.ts|wasm)$/.test(f));
    Object.assign(pkg, { main: "index.js", module: "index.js", types: "index.d.ts", files: modules.sort() });
    fs.writeFileSync(file, JSON.stringify(pkg, null, 2) + "\n");
  ' "$out"
}
