#!/usr/bin/env bash
# nginx as a config checker for the Cloudflare plugin's tests (`render_nginx_config` must pass `nginx -t` on the
# nginx that distributions ship: Debian 12 has 1.22), and openssl for the test's throwaway certificate. Installs
# them with apt when missing; never starts nginx. Idempotent: ~15 s the first time (apt), instant after.
# Prints the path of the nginx binary on stdout.
set -euo pipefail
say() { echo "nginx: $*" >&2; }
need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    say "missing ${need[*]} and no apt-get to install them; install nginx (any version from 1.18) and openssl"; exit 1
  fi
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  say "installing ${need[*]} (apt)"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
command -v nginx 2>/dev/null || echo /usr/sbin/nginx
