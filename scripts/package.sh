#!/usr/bin/env bash
# The package build: one path for `npm run build`, `npm start`, `npm test` and `npm run bench`.
# Run (`npm run build`), it installs what is missing (scripts/setup.sh) and builds the package
# users install with the `release` profile into wasm-pack.toml's out-dir (pkg/). Sourced (by
# scripts/start.sh, test.sh and bench.sh, after scripts/setup.sh), it defines:
#
# build_package PROFILE [OUT_DIR]: builds the package with the settings of wasm-pack.toml (or of
# the file FERROSYNC_WASM_PACK_TOML names): its target, its out-dir unless OUT_DIR is given, and
# PROFILE's cargo profile and wasm-opt arguments. Sets package_dir to the directory built.
#  - wasm-pack builds the engine (it reads no such file itself: the settings go on its command
#    line); wasm-opt from the npm package `binaryen` optimizes it (wasm-pack cannot download
#    its own binaryen here);
#  - FERROSYNC_CARGO_FEATURES, when set, names cargo features of the wasm crate to build with
#    (`alloc-stats`: the memory benchmark's counting allocator, never in the package users get);
#  - when PROFILE sets `gzip-budget-kb`, the build fails if the .wasm, gzipped at level 9 (as the
#    bundle benchmark counts it), is larger, naming its size and the budget;
#  - tsc compiles the hand-written modules of js/src (package entry, connectors, test harness,
#    React hooks) next to it; the package's entry point becomes index.js and `ferrosync/react`
#    is react.js (React itself is an optional peer dependency: the app brings its own). index.js
#    has side effects (it installs the document cache on the engine's classes), so package.json
#    says so and bundlers keep it;
#  - wasm-pack copies the package's README (js/PACKAGE.md, Cargo.toml's `readme`) and the
#    licence files; package.json lists them with the modules in `files`.
#
# build_app ROOT OUT_DIR PACKAGE_DIR: bundles the React app in ROOT (the demo in www/, the hook
# tests' page, the benchmark page) with Vite into OUT_DIR, over the package in PACKAGE_DIR.

build_package() {
  local profile=$1 settings=${FERROSYNC_WASM_PACK_TOML:-wasm-pack.toml}
  local assignments target out_dir profile_flags wasm_opt gzip_budget
  assignments=$(python3 scripts/wasm-pack-settings.py "$settings" "$profile") || return 1
  eval "$assignments"
  package_dir=${2:-$out_dir}
  echo "==> building the package into $package_dir ($profile, $settings)" >&2
  # From an empty directory, so that nothing stale (an earlier build's files) gets packed.
  rm -rf "$package_dir"
  wasm-pack --log-level warn build "${profile_flags[@]}" --target "$target" \
    --out-dir "$package_dir" -- --quiet ${FERROSYNC_CARGO_FEATURES:+--features "$FERROSYNC_CARGO_FEATURES"}
  if [[ ${#wasm_opt[@]} -gt 0 ]]; then
    npx --no-install wasm-opt "${wasm_opt[@]}" \
      "$package_dir/ferrosync_bg.wasm" -o "$package_dir/ferrosync_bg.wasm"
  fi
  if [[ -n $gzip_budget ]]; then
    node -e '
      const [file, budget, where] = process.argv.slice(1);
      const size = require("zlib").gzipSync(require("fs").readFileSync(file), { level: 9 }).length;
      const kb = (bytes) => `${(bytes / 1000).toFixed(1)} KB`;
      if (size > Number(budget)) {
        console.error(`${file} is ${kb(size)} gzipped (${size} bytes), over its budget of ${kb(budget)} (${where})`);
        process.exit(1);
      }
      console.error(`==> ${file}: ${kb(size)} gzipped, within its budget of ${kb(budget)}`);
    ' "$package_dir/ferrosync_bg.wasm" "$gzip_budget" "$settings [profile.$profile] gzip-budget-kb" || return 1
  fi
  npx --no-install tsc -p js/tsconfig.build.json --outDir "$package_dir"
  node -e '
    const fs = require("fs");
    const file = process.argv[1] + "/package.json";
    const pkg = JSON.parse(fs.readFileSync(file, "utf8"));
    const files = fs.readdirSync(process.argv[1]).filter((f) => /\.(js|d\.ts|wasm)$|^(README|LICENSE)/.test(f));
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
      files: files.sort(),
    });
    fs.writeFileSync(file, JSON.stringify(pkg, null, 2) + "\n");
  ' "$package_dir"
}

build_app() {
  local root=$1 out=$2 pkg=$3
  echo "==> bundling $root into $out" >&2
  FERROSYNC_PKG=$pkg npx --no-install vite build "$root" --config www/vite.config.mjs \
    --outDir "$PWD/$out"
}

# Run rather than sourced: `npm run build`.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  set -euo pipefail
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  # shellcheck source=scripts/setup.sh
  source scripts/setup.sh
  build_package release
  echo "The package is in $package_dir/: \`cd $package_dir && npm pack\` makes its tarball." >&2
fi
