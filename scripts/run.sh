#!/usr/bin/env bash
# The main job, from a fresh clone: install what is needed, build the host and the bundled plugins, then run them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build-guests.sh
echo "==> cargo build --release (the plughost binary)"
cargo build --locked --release -p plughost
PLUGHOST=target/release/plughost
echo
echo "==> $PLUGHOST inspect guests/system-info.wasm"
"$PLUGHOST" inspect guests/system-info.wasm
echo
echo "==> $PLUGHOST call guests/system-info.wasm health_check --grant system"
"$PLUGHOST" call guests/system-info.wasm health_check --grant system
echo
echo "Done. Try: $PLUGHOST call guests/system-info.wasm system_info --grant system --json"
