#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs (Rust target, a Podman engine for the Docker tests,
# nginx for checking the Cloudflare plugin's config), builds every guest fixture (tests/build.rs) and runs every test in
# the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The Docker plugin's tests need a real Docker-API engine: start Podman's (apt-installs it the first time).
# They fail if no engine can be started; PLUGHOST_SKIP_DOCKER=1 skips them explicitly.
if [ "${PLUGHOST_SKIP_DOCKER:-}" = 1 ]; then
  echo "==> PLUGHOST_SKIP_DOCKER=1: the Docker tests will be SKIPPED"
elif [ -z "${DOCKER_HOST:-}" ]; then
  echo "==> scripts/docker-engine.sh"
  eval "$(bash scripts/docker-engine.sh)"
  echo "    DOCKER_HOST=$DOCKER_HOST"
fi
# The distribution tests (host/tests/oci.rs) need a real OCI registry: Debian's docker-registry with htpasswd auth on
# loopback (apt-installs it and skopeo the first time, ~15 s; starts in < 1 s).
if [ -z "${PLUGHOST_TEST_REGISTRY:-}" ]; then
  echo "==> scripts/oci-registry.sh"
  eval "$(bash scripts/oci-registry.sh)"
  echo "    PLUGHOST_TEST_REGISTRY=$PLUGHOST_TEST_REGISTRY"
fi
# The cluster tests (host/tests/cluster.rs) need a real PostgreSQL: Debian's postgresql 15, initdb'd into a temp dir
# on a loopback port (apt-installs it the first time, ~30 s; a new cluster starts in ~2 s, a running one is reused).
# They fail without it; PLUGHOST_SKIP_CLUSTER=1 skips them explicitly.
if [ "${PLUGHOST_SKIP_CLUSTER:-}" = 1 ]; then
  echo "==> PLUGHOST_SKIP_CLUSTER=1: the cluster (PostgreSQL) tests will be SKIPPED"
elif [ -z "${PLUGHOST_TEST_PG:-}" ]; then
  echo "==> scripts/postgres.sh"
  eval "$(bash scripts/postgres.sh)"
  echo "    PLUGHOST_TEST_PG=$PLUGHOST_TEST_PG"
fi
# …and haproxy in front of three replicas (the test runs scripts/haproxy.sh itself, in the foreground, and stops it
# by PID; here it is only installed, so the apt time is not inside a test).
if [ "${PLUGHOST_SKIP_CLUSTER:-}" != 1 ]; then
  echo "==> scripts/haproxy.sh --install"
  bash scripts/haproxy.sh --install >/dev/null
fi
# The Cloudflare plugin's nginx config is checked with a real `nginx -t` (apt-installs nginx the first time; the test
# runs this script itself too, so a single `cargo test` works as well).
echo "==> scripts/nginx.sh"
bash scripts/nginx.sh >/dev/null
# The operator page's test (host/tests/ui.rs) drives a real headless Chromium: install it (apt) the first time.
echo "==> scripts/chromium.sh"
bash scripts/chromium.sh >/dev/null
# Plugins in Python, JavaScript and C are built by `plughost build`, which installs their pinned toolchains once
# into target/toolchains (minutes the first time, nothing after).
export PLUGHOST_TOOLCHAINS="${PLUGHOST_TOOLCHAINS:-$PWD/target/toolchains}"
cargo test --locked --workspace "$@"
