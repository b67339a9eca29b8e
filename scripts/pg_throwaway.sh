#!/usr/bin/env bash
# Start/stop a throwaway PostgreSQL cluster under var/pgtest on port 55432 (trust auth, loopback only).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=var/pgtest
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
PATH="$BIN:$PATH"
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "${1:-}" in
  start)
    mkdir -p var
    if [ ! -f "$DATA/PG_VERSION" ]; then
      mkdir -p "$DATA"
      [ "$(id -u)" = 0 ] && chown postgres "$DATA"
      as_owner initdb -D "$DATA" -U postgres -A trust >/dev/null
    fi
    as_owner pg_ctl -D "$DATA" -o "-p 55432 -c listen_addresses=127.0.0.1 -c unix_socket_directories=/tmp -c max_connections=200" -l "$DATA/server.log" -w start >/dev/null
    ;;
  stop)
    as_owner pg_ctl -D "$DATA" -m fast -w stop >/dev/null || true
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
