#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests and the demo (Debian's `postgresql` package).
#
#   deploy/postgres/postgres.sh start   # prints `export XL_POSTGRES_URL=postgresql+psycopg://...`
#   eval "$(deploy/postgres/postgres.sh start)"
#   deploy/postgres/postgres.sh url     # the URL of the running cluster
#   deploy/postgres/postgres.sh status
#   deploy/postgres/postgres.sh stop    # stops it and deletes its data directory
#
# The cluster lives in $XL_PG_DIR (default /tmp/xueliang-pg), listens on 127.0.0.1 only, on a
# free port (or $XL_PG_PORT), with trust authentication for local TCP: it is for tests, never
# for production. `start` is idempotent: a cluster already running is reused. The export line is
# also written to $XL_PG_DIR/env. As root, initdb/postgres run as the `postgres` user (runuser).
set -euo pipefail

PGDIR="${XL_PG_DIR:-/tmp/xueliang-pg}"
DATA="$PGDIR/data"
ENVFILE="$PGDIR/env"
LOG="$PGDIR/postgres.log"
DBNAME="xueliang"
DBUSER="xueliang"

find_bin() {
  if [[ -n "${XL_PG_BIN:-}" ]]; then echo "$XL_PG_BIN"; return; fi
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [[ -x "$d/initdb" ]] && { echo "$d"; return; }
  done
  command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return; }
  echo "postgres.sh: no PostgreSQL binaries found (apt-get install -y postgresql)" >&2
  exit 1
}
BIN="$(find_bin)"

as_pg() {
  if [[ "$(id -u)" == 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

running() {
  [[ -f "$DATA/postmaster.pid" ]] && as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

url() {
  local port
  port="$(cat "$PGDIR/port")"
  echo "postgresql+psycopg://$DBUSER@127.0.0.1:$port/$DBNAME"
}

start() {
  mkdir -p "$PGDIR"
  if [[ "$(id -u)" == 0 ]]; then chown postgres: "$PGDIR"; chmod 700 "$PGDIR"; fi
  if running; then
    echo "export XL_POSTGRES_URL=$(url)"
    return
  fi
  if [[ ! -f "$DATA/PG_VERSION" ]]; then
    as_pg "$BIN/initdb" -D "$DATA" -U "$DBUSER" --auth=trust -E UTF8 --locale=C.UTF-8 >"$PGDIR/initdb.log" 2>&1 \
      || { cat "$PGDIR/initdb.log" >&2; exit 1; }
  fi
  local port="${XL_PG_PORT:-}"
  [[ -n "$port" ]] || port="$(free_port)"
  echo "$port" > "$PGDIR/port"
  # fsync off: a throwaway test cluster (crash tests kill clients, never the server)
  as_pg "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start \
    -o "-p $port -k $PGDIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    >/dev/null || { tail -n 30 "$LOG" >&2; exit 1; }
  if ! as_pg "$BIN/psql" -h 127.0.0.1 -p "$port" -U "$DBUSER" -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname='$DBNAME'" | grep -q 1; then
    as_pg "$BIN/createdb" -h 127.0.0.1 -p "$port" -U "$DBUSER" "$DBNAME"
  fi
  echo "export XL_POSTGRES_URL=$(url)" > "$ENVFILE"
  cat "$ENVFILE"
}

stop() {
  if running; then
    as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
  fi
  rm -rf "$PGDIR"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  url) running || { echo "postgres.sh: not running" >&2; exit 1; }; url ;;
  status) if running; then echo "running: $(url)"; else echo "stopped"; exit 3; fi ;;
  *) echo "usage: $0 {start|stop|status|url}" >&2; exit 2 ;;
esac
