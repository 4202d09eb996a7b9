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

for id in system-info; do
  wasm="guests/$id.wasm"
  echo
  echo "==> sign and install $wasm"
  "$P" sign "$wasm" --key local
  if "$P" info "$id" >/dev/null 2>&1; then
    "$P" upgrade "$wasm" --yes
  else
    "$P" install "$wasm" --yes
  fi
done

echo
echo "==> $P list"
"$P" list
echo
echo "==> $P call system-info health_check"
"$P" call system-info health_check
echo
echo "==> the MCP gateway: $P serve ${*:---http}"
echo "    connect a client (README: Connecting MCP clients), e.g."
echo "    npx @modelcontextprotocol/inspector --cli http://127.0.0.1:8787/mcp --transport http --method tools/list"
exec "$P" serve "${@:---http}"
