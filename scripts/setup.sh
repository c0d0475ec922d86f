#!/usr/bin/env bash
# Installs what building and testing Ferrosync needs on Debian 12, skipping whatever is already there.
# Quiet on success; every step is idempotent. Sourced by scripts/test.sh and scripts/start.sh.
set -euo pipefail

WASM_BINDGEN_VERSION=0.2.130 # must match the `wasm-bindgen = "=…"` pin in Cargo.toml
WASM_PACK_VERSION=0.15.1
GECKODRIVER_VERSION=0.37.1

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf '[setup] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown >/dev/null 2>&1
fi

if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (a few minutes, once)"
  cargo install --quiet --force wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi

if [ "$(wasm-pack --version 2>/dev/null | awk '{print $2}')" != "$WASM_PACK_VERSION" ]; then
  say "installing wasm-pack $WASM_PACK_VERSION (a few minutes, once)"
  cargo install --quiet --force wasm-pack --version "$WASM_PACK_VERSION"
fi

# The browsers the tests run in, and their WebDriver servers: Debian's Chromium and Firefox ESR.
apt_packages=()
command -v chromium >/dev/null || apt_packages+=(chromium)
command -v chromedriver >/dev/null || apt_packages+=(chromium-driver)
command -v firefox-esr >/dev/null || apt_packages+=(firefox-esr)
# PostgreSQL: the server's tests start a throwaway cluster of it (scripts/postgres.sh).
find /usr/lib/postgresql -maxdepth 3 -path '*/bin/initdb' 2>/dev/null | grep -q . ||
  apt_packages+=(postgresql)
if [ ${#apt_packages[@]} -gt 0 ]; then
  say "installing Debian's ${apt_packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt_log=$(mktemp)
  if ! { as_root apt-get update -qq && as_root apt-get install -y -qq "${apt_packages[@]}"; } >"$apt_log" 2>&1; then
    cat "$apt_log" >&2
    exit 1
  fi
  rm -f "$apt_log"
fi

if [ "$(geckodriver --version 2>/dev/null | awk 'NR == 1 {print $2}')" != "$GECKODRIVER_VERSION" ]; then
  say "installing geckodriver $GECKODRIVER_VERSION (a minute or two, once)"
  cargo install --quiet --force geckodriver --version "$GECKODRIVER_VERSION"
fi

# npm packages: reinstall only when package-lock.json changed since the last install. No
# package needs its install script (pouchdb-server's optional native stores would try to
# download or compile binaries), so none run.
if [ -f "$root/package-lock.json" ]; then
  stamp="$root/node_modules/.ferrosync-installed"
  if [ ! -f "$stamp" ] || [ "$root/package-lock.json" -nt "$stamp" ]; then
    say "installing npm packages"
    (cd "$root" && npm ci --silent --ignore-scripts --no-audit --no-fund >/dev/null)
    touch "$stamp"
  fi
fi
