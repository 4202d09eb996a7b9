#!/usr/bin/env bash
# A real PostgreSQL for the cluster tests (`--store postgres://…`): Debian's postgresql (15), a throwaway cluster
# initdb'd into a temp dir as the `postgres` user (the server refuses to run as root, and CI runs as root), listening
# on a free loopback port with trust auth, and one database. Idempotent: ~30 s the first time (apt), ~1.5 s for a new
# cluster, < 0.1 s when the cluster this script started still answers (it is reused).
#
#   eval "$(scripts/postgres.sh)"      # exports PLUGHOST_TEST_PG=postgres://postgres@127.0.0.1:PORT/plughost and
#                                       # PLUGHOST_TEST_PG_DATA (the cluster's data dir, for pg_ctl stop/start)
#   scripts/postgres.sh --stop          # stops the cluster this script started (and forgets it)
#   scripts/postgres.sh --stop-now      # `pg_ctl stop -m immediate` (a crash), keeping the cluster for --start
#   scripts/postgres.sh --start         # starts the kept cluster again on the same port
#
# Settings: PLUGHOST_PG_DIR (default $TMPDIR/plughost-pg) holds the cluster, its socket, port and log.
# Only the final `export …` lines go to stdout; progress goes to stderr. Trust auth on loopback only: test use.
set -euo pipefail
D=${PLUGHOST_PG_DIR:-${TMPDIR:-/tmp}/plughost-pg}
DB=plughost
say() { echo "postgres: $*" >&2; }

pgbin() {
  local v
  for v in $(ls /usr/lib/postgresql 2>/dev/null | sort -rn); do
    [ -x "/usr/lib/postgresql/$v/bin/initdb" ] && { echo "/usr/lib/postgresql/$v/bin"; return; }
  done
}
BIN=$(pgbin || true)

# As the postgres user when root (the server will not run as root); as ourselves otherwise.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
ctl() { as_pg "$BIN/pg_ctl" -D "$D/data" "$@"; }
port() { cat "$D/port"; }
up() { [ -n "$BIN" ] && [ -f "$D/port" ] && as_pg "$BIN/pg_isready" -q -h 127.0.0.1 -p "$(port)" -t 1; }
start() {
  ctl -o "-p $(port) -k $D -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=on" \
    -l "$D/log" -w -t 30 start >&2
}

case "${1:-}" in
  --stop)
    if [ -n "$BIN" ] && [ -f "$D/data/postmaster.pid" ]; then ctl -m fast stop >&2 || true; say "stopped"; fi
    rm -rf "$D"
    exit 0 ;;
  --stop-now)
    ctl -m immediate stop >&2; exit 0 ;;
  --start)
    start; exit 0 ;;
esac

# 1. Packages (Debian 12: postgresql 15).
if [ -z "$BIN" ]; then
  if ! command -v apt-get >/dev/null; then
    say "no PostgreSQL server binaries and no apt-get to install them; install postgresql (initdb, pg_ctl)"
    exit 1
  fi
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  say "installing postgresql (apt)"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends postgresql >&2
  BIN=$(pgbin)
fi

# 2. The cluster (left alone when it already answers).
if ! up; then
  if [ -f "$D/data/PG_VERSION" ] && [ -f "$D/port" ]; then
    say "restarting the kept cluster on port $(port)"
    rm -f "$D/data/postmaster.pid"
    start
  else
    rm -rf "$D"
    mkdir -p "$D"
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' >"$D/port"
    chmod 755 "$D"
    [ "$(id -u)" = 0 ] && chown postgres "$D"
    say "initdb into $D/data, port $(port)"
    as_pg "$BIN/initdb" -D "$D/data" -A trust -U postgres -E UTF8 --no-sync >/dev/null
    start
    as_pg "$BIN/createdb" -h 127.0.0.1 -p "$(port)" -U postgres "$DB"
  fi
  up || { say "PostgreSQL did not come up; its log:"; cat "$D/log" >&2; exit 1; }
fi
echo "export PLUGHOST_TEST_PG=postgres://postgres@127.0.0.1:$(port)/$DB"
echo "export PLUGHOST_TEST_PG_DATA=$D"
