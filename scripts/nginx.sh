#!/usr/bin/env bash
# nginx as a config checker for the Cloudflare plugin's tests (`render_nginx_config` must pass `nginx -t` on the
# nginx that distributions ship: Debian 12 has 1.22). Installs nginx with apt when it is missing; never starts it.
# Idempotent: ~20 s the first time (apt), instant after. Prints the path of the nginx binary on stdout.
set -euo pipefail
say() { echo "nginx: $*" >&2; }
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  if ! command -v apt-get >/dev/null; then
    say "nginx is missing and there is no apt-get to install it; install nginx (any version from 1.18)"; exit 1
  fi
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  say "installing nginx (apt)"
  $SUDO apt-get update -qq >&2
  # The package's post-install starts a service where an init system runs; policy-rc.d keeps it from doing so.
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $SUDO apt-get install -y -qq --no-install-recommends nginx-light >&2 ||
    DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $SUDO apt-get install -y -qq --no-install-recommends nginx >&2
fi
command -v nginx 2>/dev/null || echo /usr/sbin/nginx
