#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests (scripts/test.sh) and the server's load runs
# (scripts/load.sh): a new data directory, a free loopback port, trust authentication on
# loopback only. `start_postgres` sets POSTGRES_URL (the `postgres` database, user `postgres`);
# `stop_postgres` stops the cluster and removes its files. `postgres_ctl DIR start|stop` starts
# or stops the cluster in DIR (POSTGRES_DIR) again (the end-to-end tests take the database down and back). As
# root, the cluster runs as the `postgres` user (PostgreSQL refuses to run as root).

postgres_dir=
postgres_as=()

# The newest installed PostgreSQL's binaries (Debian: /usr/lib/postgresql/N/bin).
postgres_bin() {
  find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1
}

# A free loopback port below Linux's ephemeral range.
postgres_port() {
  python3 -c '
import random, socket
while True:
    port = random.randrange(20000, 32768)
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            continue
    print(port)
    break'
}

# Starts a cluster; each argument is one more setting (`name=value`).
start_postgres() {
  local bin port setting
  bin=$(postgres_bin)
  if [ -z "$bin" ]; then
    echo "PostgreSQL is not installed (scripts/setup.sh installs it)" >&2
    return 1
  fi
  postgres_dir=$(mktemp -d)
  postgres_as=()
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$postgres_dir"
    postgres_as=(runuser -u postgres --)
  fi
  port=$(postgres_port)
  if ! "${postgres_as[@]}" "$bin/initdb" -D "$postgres_dir/data" -U postgres --auth=trust \
    -E UTF8 --no-instructions >"$postgres_dir/initdb.log" 2>&1; then
    cat "$postgres_dir/initdb.log" >&2
    return 1
  fi
  {
    echo "listen_addresses = '127.0.0.1'"
    echo "port = $port"
    echo "unix_socket_directories = '$postgres_dir'"
    echo "max_connections = 300"
    for setting in "$@"; do echo "$setting"; done
  } >>"$postgres_dir/data/postgresql.conf"
  if ! postgres_ctl "$postgres_dir" start; then
    cat "$postgres_dir/server.log" >&2
    return 1
  fi
  POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
  POSTGRES_DIR=$postgres_dir
  export POSTGRES_URL POSTGRES_DIR
}

# `pg_ctl start|stop` (fast, waiting) for the cluster whose files are in DIR.
postgres_ctl() {
  local dir=$1 action=$2 as=()
  if [ "$(id -u)" -eq 0 ]; then as=(runuser -u postgres --); fi
  case $action in
    start) "${as[@]}" "$(postgres_bin)/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null ;;
    stop) "${as[@]}" "$(postgres_bin)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null ;;
  esac
}

# Stops the cluster started by start_postgres and removes its files.
stop_postgres() {
  if [ -n "$postgres_dir" ]; then
    "${postgres_as[@]}" "$(postgres_bin)/pg_ctl" -D "$postgres_dir/data" -m fast -w stop \
      >/dev/null 2>&1 || true
    rm -rf "$postgres_dir"
    postgres_dir=
  fi
}
