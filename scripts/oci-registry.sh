#!/usr/bin/env bash
# A real OCI registry for the distribution tests (`plughost push` / `install oci://…`): the CNCF distribution server
# (Debian's docker-registry 2.8) on a free loopback port, with htpasswd (bcrypt) auth, plus skopeo to read back what
# plughost pushed. Idempotent: ~15 s the first time (apt), < 1 s after; a registry this script started and that still
# answers is reused.
#
#   eval "$(scripts/oci-registry.sh)"     # exports PLUGHOST_TEST_REGISTRY=127.0.0.1:PORT, its test credentials and
#                                          # PLUGHOST_TEST_REGISTRY_DATA (its storage, which a test tampers with)
#   scripts/oci-registry.sh --stop        # stops the registry this script started
#
# Settings: PLUGHOST_OCI_DIR (default $TMPDIR/plughost-oci) holds the config, the htpasswd file, the data and the log.
# Only the final `export …` lines go to stdout; progress goes to stderr. The credentials are test-only ones, made
# up here for a loopback registry that holds nothing else.
set -euo pipefail
D=${PLUGHOST_OCI_DIR:-${TMPDIR:-/tmp}/plughost-oci}
USER_NAME=plughost-test
say() { echo "oci-registry: $*" >&2; }

if [ "${1:-}" = "--stop" ]; then
  if [ -f "$D/registry.pid" ] && kill "$(cat "$D/registry.pid")" 2>/dev/null; then say "stopped"; fi
  rm -f "$D/registry.pid" "$D/addr"
  exit 0
fi

# 1. Packages (Debian 12: docker-registry 2.8.2, skopeo 1.9, htpasswd from apache2-utils).
need=()
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    say "missing ${need[*]} and no apt-get to install them; install docker-registry (CNCF distribution), skopeo, htpasswd"
    exit 1
  fi
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  say "installing ${need[*]} (apt)"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
mkdir -p "$D/data"
chmod 700 "$D"

# 2. Test credentials (made once, kept with the registry's data).
if [ ! -s "$D/password" ]; then
  head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$D/password"
  chmod 600 "$D/password"
fi
PASSWORD=$(cat "$D/password")
htpasswd -Bbc "$D/htpasswd" "$USER_NAME" "$PASSWORD" >/dev/null 2>&1

up() { [ -f "$D/addr" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$(cat "$D/addr")/v2/")" = 401 ]; }

# 3. The registry (left alone when it already answers).
if ! up; then
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  ADDR=127.0.0.1:$PORT
  cat >"$D/config.yml" <<EOF
version: 0.1
log: { level: warn }
storage: { filesystem: { rootdirectory: $D/data }, delete: { enabled: true } }
http: { addr: $ADDR }
auth: { htpasswd: { realm: plughost-test, path: $D/htpasswd } }
EOF
  say "starting docker-registry on $ADDR"
  setsid nohup docker-registry serve "$D/config.yml" >"$D/registry.log" 2>&1 </dev/null &
  echo $! >"$D/registry.pid"
  echo "$ADDR" >"$D/addr"
  for _ in $(seq 1 100); do up && break; sleep 0.1; done
  if ! up; then
    say "the registry did not come up; its log:"; cat "$D/registry.log" >&2; exit 1
  fi
fi
echo "export PLUGHOST_TEST_REGISTRY=$(cat "$D/addr")"
echo "export PLUGHOST_TEST_REGISTRY_USER=$USER_NAME"
echo "export PLUGHOST_TEST_REGISTRY_PASSWORD=$PASSWORD"
echo "export PLUGHOST_TEST_REGISTRY_DATA=$D/data"
