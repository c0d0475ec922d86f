#!/usr/bin/env bash
# Helpers for the scripts that start ferrosync-server (start.sh, test.sh, bench.sh).

# 32 random hex characters (development tokens, JWT secrets).
random_hex() { od -An -tx1 -N16 /dev/urandom | tr -d ' \n'; }

# Whether the server at HOST:PORT answers GET /healthz with 200.
healthy() {
  (
    exec 3<>"/dev/tcp/${1%:*}/${1##*:}"
    printf 'GET /healthz HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$1" >&3
    IFS= read -r -t 2 status_line <&3
    [[ $status_line == "HTTP/1.1 200 "* ]]
  ) 2>/dev/null
}

# Waits up to 30 s for the server process PID to answer on HOST:PORT; fails if it exits first
# or never does.
wait_healthy() {
  for _ in $(seq 300); do
    healthy "$1" && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  healthy "$1"
}
