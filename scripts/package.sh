#!/usr/bin/env bash
# Defines build_package OUT_DIR release|dev: the package users import, in OUT_DIR; and build_app.
#  - wasm-pack builds the engine (only the root package builds for wasm32: default-members are
#    the native crates); in release, with the size-optimized cargo profile `wasm-release`, and
#    wasm-opt -Oz from the npm package `binaryen` shrinks it (wasm-pack cannot download its own
#    binaryen here);
#  - tsc compiles the hand-written modules of js/src (package entry, connectors, test harness,
#    React hooks) next to it; the package's entry point becomes index.js and `ferrosync/react`
#    is react.js (React itself is a peer dependency: the app brings its own). index.js has side
#    effects (it installs the document cache on the engine's classes), so bundlers keep it.
# Sourced by scripts/start.sh, scripts/bench.sh and scripts/test.sh after scripts/setup.sh.

build_package() {
  local out=$1 profile=$2
  echo "==> building the package into $out ($profile)" >&2
  # Release builds use the cargo profile `wasm-release` (opt-level "z"; see Cargo.toml).
  local cargo_profile=("--$profile")
  if [[ $profile == release ]]; then
    cargo_profile=(--profile wasm-release)
  fi
  wasm-pack --log-level warn build "${cargo_profile[@]}" --target web --out-dir "$out" \
    -- --quiet -p ferrosync
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
    Object.assign(pkg, {
      main: "index.js",
      module: "index.js",
      types: "index.d.ts",
      exports: {
        ".": { types: "./index.d.ts", default: "./index.js" },
        "./react": { types: "./react.d.ts", default: "./react.js" },
      },
      sideEffects: ["./index.js", "./snippets/*"],
      peerDependencies: { react: ">=18" },
      peerDependenciesMeta: { react: { optional: true } },
      files: modules.sort(),
    });
    fs.writeFileSync(file, JSON.stringify(pkg, null, 2) + "\n");
  ' "$out"
}

# build_app ROOT OUT_DIR PACKAGE_DIR: bundles the React app in ROOT (the demo in www/, or the
# hook tests' page) with Vite into OUT_DIR, over the package built in PACKAGE_DIR.
build_app() {
  local root=$1 out=$2 pkg=$3
  echo "==> bundling $root into $out" >&2
  FERROSYNC_PKG=$pkg npx --no-install vite build "$root" --config www/vite.config.mjs \
    --outDir "$PWD/$out"
}
