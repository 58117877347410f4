#!/usr/bin/env bash
# A throwaway local PostgreSQL for running the suite (or the bench) against it.
#   bash scripts/pg-local.sh start   -> prints a DATABASE_URL (cluster under ./var/pg, first free port from 55432)
#   bash scripts/pg-local.sh stop
# Installs the `postgresql` package from apt when no server binaries are found.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${GUANJIA_PG_DIR:-$PWD/var/pg}
# The port is remembered with the cluster; a new cluster takes the first free one from 55432.
if [ -f "$DIR/guanjia.port" ]; then PORT=$(cat "$DIR/guanjia.port"); else
  PORT=${GUANJIA_PG_PORT:-$(python3 -c "
import socket
for p in range(55432, 55532):
    try:
        socket.socket().bind(('127.0.0.1', p)); print(p); break
    except OSError: pass")}
fi
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$BIN" ]; then
  SUDO=""; [ "$(id -u)" = "0" ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
  BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi
# PostgreSQL refuses to run as root: use the `postgres` system user then.
RUN=(); [ "$(id -u)" = "0" ] && RUN=(runuser -u postgres --)
case "${1:-start}" in
  start)
    mkdir -p "$DIR"; [ "$(id -u)" = "0" ] && chown postgres "$DIR"
    if [ ! -f "$DIR/PG_VERSION" ]; then
      "${RUN[@]}" "$BIN/initdb" -D "$DIR" -U guanjia --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    fi
    echo "$PORT" > "$DIR/guanjia.port"
    if ! "${RUN[@]}" "$BIN/pg_ctl" -D "$DIR" status >/dev/null 2>&1; then
      "${RUN[@]}" "$BIN/pg_ctl" -D "$DIR" -l "$DIR/server.log" -w \
        -o "-p $PORT -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
    fi
    "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U guanjia -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='guanjia'" \
      | grep -q 1 || "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U guanjia guanjia
    echo "postgresql+psycopg://guanjia@127.0.0.1:$PORT/guanjia"
    ;;
  stop)
    "${RUN[@]}" "$BIN/pg_ctl" -D "$DIR" -m fast stop >/dev/null && echo stopped
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
