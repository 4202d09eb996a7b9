#!/usr/bin/env bash
# haproxy in front of gateway replicas on loopback, for the cluster tests (and as the recipe an operator adapts).
# Installs Debian's haproxy with apt the first time (~10 s), then runs it in the FOREGROUND (exec: the caller stops it
# by the PID it spawned). Health checks hit each replica's /health every 200 ms; a replica that fails two is taken
# out, one success puts it back. A request whose connection to a replica fails (a replica killed) is retried on
# another (`option redispatch`): nothing was sent yet, so no call runs twice. Legacy (2025-11-25) MCP sessions live
# in one replica's memory, so they stick by their `Mcp-Session-Id` (learned from the initialize response);
# stateless 2026-07-28 requests carry no session and go round robin.
#
#   scripts/haproxy.sh --install          # only install; prints the haproxy binary's path
#   scripts/haproxy.sh PORT HOST:PORT...  # serve 127.0.0.1:PORT in front of the replicas (foreground)
set -euo pipefail
say() { echo "haproxy: $*" >&2; }
if ! command -v haproxy >/dev/null && [ ! -x /usr/sbin/haproxy ]; then
  if ! command -v apt-get >/dev/null; then
    say "no haproxy and no apt-get to install it; install haproxy (2.x)"; exit 1
  fi
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  say "installing haproxy (apt)"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends haproxy >&2
fi
HAPROXY=$(command -v haproxy 2>/dev/null || echo /usr/sbin/haproxy)
if [ "${1:-}" = --install ]; then echo "$HAPROXY"; exit 0; fi
[ $# -ge 2 ] || { say "usage: $0 PORT HOST:PORT..."; exit 2; }
PORT=$1; shift
DIR=$(mktemp -d "${TMPDIR:-/tmp}/plughost-haproxy.XXXXXX")
CFG=$DIR/haproxy.cfg
{
  cat <<CFG
global
  maxconn 4096
defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  retries 2
  option redispatch
frontend mcp
  bind 127.0.0.1:$PORT
  default_backend replicas
backend replicas
  balance roundrobin
  option httpchk GET /health
  http-check expect status 200
  stick-table type string len 64 size 100k expire 30m
  stick store-response res.hdr(mcp-session-id)
  stick match req.hdr(mcp-session-id)
  default-server check inter 200ms fall 2 rise 1
CFG
  i=0
  for b in "$@"; do i=$((i + 1)); echo "  server r$i $b"; done
} >"$CFG"
"$HAPROXY" -c -q -f "$CFG" >&2
say "127.0.0.1:$PORT -> $*"
exec "$HAPROXY" -f "$CFG" -db
