#!/usr/bin/env bash
# Installs what building and testing plughost needs. Idempotent: safe to run every time.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null; then
  echo "plughost needs Rust (cargo) — install it from https://rustup.rs and run this again" >&2
  exit 1
fi
# Guests are WebAssembly components built by rustc's wasm32-wasip2 target.
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  echo "==> rustup target add wasm32-wasip2"
  rustup target add wasm32-wasip2
fi
