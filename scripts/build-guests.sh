#!/usr/bin/env bash
# Builds the bundled plugins as wasm32-wasip2 components and copies them to guests/<name>.wasm.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
GUESTS=(system-info cloudflare docker)
args=()
for g in "${GUESTS[@]}"; do args+=(-p "$g"); done
cargo build --locked --target wasm32-wasip2 --profile guest "${args[@]}"
for g in "${GUESTS[@]}"; do
  cp "target/wasm32-wasip2/guest/${g//-/_}.wasm" "guests/$g.wasm"
  echo "built guests/$g.wasm ($(stat -c %s "guests/$g.wasm") bytes)"
done
