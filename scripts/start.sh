#!/usr/bin/env bash
# THE main command (`npm start`): installs what is missing, builds the wasm package, the server
# and the demo app (www/, bundled with Vite), then serves the app in the foreground until Ctrl-C.
# FERROSYNC_LISTEN changes the address (default 127.0.0.1:8787); FERROSYNC_DEV_TOKEN fixes the
# development token clients authenticate with (default: a new random one each start).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

listen="${FERROSYNC_LISTEN:-127.0.0.1:8787}"
www="$PWD/target/www"
db="$PWD/target/ferrosync-demo.db"
# shellcheck source=scripts/server.sh
source scripts/server.sh
dev_token="${FERROSYNC_DEV_TOKEN:-$(random_hex)}"

# shellcheck source=scripts/setup.sh
source scripts/setup.sh

# shellcheck source=scripts/package.sh
source scripts/package.sh
build_package release

echo "==> building ferrosync-server (release)" >&2
cargo build --quiet --release -p ferrosync-server

build_app www target/www "$package_dir"
# The app reads this server's development token from config.json.
printf '{"authToken":"%s"}\n' "$dev_token" >"$www/config.json"

target/release/ferrosync-server --listen "$listen" --static "$www" --db "sqlite://$db" \
  --dev-token "$dev_token" &
server=$!
stop() { kill -TERM "$server" 2>/dev/null || true; }
trap stop INT TERM EXIT

# Announce the URL only once the server answers (it gets 30 s).
if ! wait_healthy "$listen" "$server"; then
  echo "ferrosync-server did not start on $listen" >&2
  exit 1
fi
echo "Ferrosync demo: http://$listen/"
echo "Dev token: $dev_token"

status=0
wait "$server" || status=$?
if [ "$status" -gt 128 ]; then
  # A trapped Ctrl-C/SIGTERM interrupted `wait`: let the server finish its graceful shutdown.
  status=0
  wait "$server" || status=$?
fi
exit "$status"
