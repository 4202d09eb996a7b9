#!/usr/bin/env bash
# A real headless browser for the operator page's tests (host/tests/ui.rs): Debian's `chromium` and `chromium-driver`
# (chromedriver speaks WebDriver on loopback). Idempotent: a minute or two the first time (apt), nothing after.
#
#   scripts/chromium.sh          # installs if missing; prints the chromedriver path on stdout
#
# Progress goes to stderr. Tests run as root in CI, so they start Chromium with --no-sandbox --headless.
set -euo pipefail
say() { echo "chromium: $*" >&2; }
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    say "missing ${need[*]} and no apt-get to install them; install Chromium and its chromedriver"; exit 1
  fi
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  say "installing ${need[*]} (apt)"
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium chromium-driver >&2
fi
command -v chromedriver
