#!/usr/bin/env bash
# The main job, from a fresh clone: install what is needed, build the host and the bundled plugins, sign them with
# this machine's own key, install them into the registry (data dir: $PLUGHOST_HOME, else ~/.local/share/plughost),
# call one, then run the MCP gateway in the foreground (Ctrl-C stops it).
#   ./scripts/run.sh                 # gateway on Streamable HTTP at http://127.0.0.1:8787/mcp
#   ./scripts/run.sh --stdio         # any arguments are passed to `plughost serve` instead
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build-guests.sh
echo "==> cargo build --release (the plughost binary)"
cargo build --locked --release -p plughost
P=target/release/plughost

echo
echo "==> a signing key for plugins built on this machine (kept in the data dir; trusted here)"
"$P" keys generate --name local --out target --if-missing --trust

# What each bundled plugin asks for beyond its bare imports (the operator approves it at install).
requests() {
  case "$1" in
    cloudflare) echo "http:https://api.cloudflare.com" ;;
    docker) echo "container:read,lifecycle,images;images=localhost/*,docker.io/library/*" ;;
  esac
}

for id in system-info cloudflare docker; do
  wasm="guests/$id.wasm"
  req=()
  r=$(requests "$id")
  [ -n "$r" ] && req=(--request "$r")
  echo
  echo "==> sign and install $wasm"
  "$P" sign "$wasm" --key local "${req[@]}"
  if "$P" info "$id" >/dev/null 2>&1; then
    "$P" upgrade "$wasm" --yes
  else
    "$P" install "$wasm" --yes
  fi
done

# The Docker plugin needs a Docker-API engine: use DOCKER_HOST or /var/run/docker.sock if there is one, else start
# the project's Podman service (scripts/docker-engine.sh; PLUGHOST_SKIP_DOCKER=1 skips this), and remember the address
# in the plugin's config so later calls find it.
if [ "${PLUGHOST_SKIP_DOCKER:-}" != 1 ]; then
  if [ -z "${DOCKER_HOST:-}" ] && [ ! -S /var/run/docker.sock ]; then
    echo
    echo "==> scripts/docker-engine.sh (a local Podman service for the Docker plugin)"
    eval "$(bash scripts/docker-engine.sh)"
  fi
  if [ -n "${DOCKER_HOST:-}" ]; then
    "$P" config docker set docker_host "$DOCKER_HOST"
  fi
fi

echo
echo "==> $P list"
"$P" list
echo
echo "==> $P call system-info health_check"
"$P" call system-info health_check
if [ "${PLUGHOST_SKIP_DOCKER:-}" != 1 ]; then
  echo
  echo "==> $P call docker engine_info"
  "$P" call docker engine_info
fi
echo
echo "Cloudflare: give it an API token with \`$P config cloudflare set api_token --secret\`, then e.g."
echo "  $P call cloudflare list_zones"
echo
echo "==> the MCP gateway: $P serve ${*:---http}"
echo "    connect a client (README: Connecting MCP clients), e.g."
if [ "${1:-}" = "--stdio" ]; then
  echo "    npx @modelcontextprotocol/inspector --cli $P serve --stdio --home <data dir> --method tools/list"
else
  addr=127.0.0.1:8787
  if [ "${1:-}" = "--http" ] && [ -n "${2:-}" ] && [ "${2#-}" = "$2" ]; then addr=$2; fi
  echo "    npx @modelcontextprotocol/inspector --cli http://$addr/mcp --transport http --method tools/list"
fi
exec "$P" serve "${@:---http}"
