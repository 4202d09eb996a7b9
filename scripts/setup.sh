#!/usr/bin/env bash
# Installs what building and testing plughost needs. Idempotent: safe to run every time.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null; then
  echo "plughost needs Rust (cargo) — install it from https://rustup.rs and run this again" >&2
  exit 1
fi
# Guests are WebAssembly components built by rustc's wasm32-wasip2 target; lean Rust plugins (no WASI) by its
# wasm32-unknown-unknown target.
for target in wasm32-wasip2 wasm32-unknown-unknown; do
  if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    echo "==> rustup target add $target"
    rustup target add "$target"
  fi
done

# Plugins in Python, JavaScript and C: `plughost build` installs their pinned toolchains itself (componentize-py
# and ziglang into Python venvs, componentize-js + jco with npm), so it needs Python 3 with venv, Node.js and npm.
missing=()
command -v python3 >/dev/null && python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3 python3-venv)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if ((${#missing[@]})); then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "==> apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "plughost's guest toolchains need: ${missing[*]} (install them with your package manager)" >&2
    exit 1
  fi
fi

# The official MCP Python SDK, pinned: the gateway's tests drive plughost with a real MCP client. Next to it, the
# Prometheus client's text parser checks /metrics.
MCP_SDK_VERSION=2.3.0
PROMETHEUS_CLIENT_VERSION=0.23.1
PY=target/pyclient/bin/python
if ! "$PY" -c "import importlib.metadata as m, sys; sys.exit(m.version('mcp') != '$MCP_SDK_VERSION' or m.version('prometheus_client') != '$PROMETHEUS_CLIENT_VERSION')" 2>/dev/null; then
  if ! command -v python3 >/dev/null; then
    echo "plughost's tests need python3 (with venv) for the MCP client: apt-get install python3 python3-venv" >&2
    exit 1
  fi
  echo "==> MCP Python SDK $MCP_SDK_VERSION and prometheus_client $PROMETHEUS_CLIENT_VERSION into target/pyclient"
  [ -x "$PY" ] || python3 -m venv target/pyclient
  "$PY" -m pip install --quiet --disable-pip-version-check "mcp==$MCP_SDK_VERSION" \
    "prometheus_client==$PROMETHEUS_CLIENT_VERSION"
fi
