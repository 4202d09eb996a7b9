#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, builds every guest fixture (tests/build.rs) and
# runs every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo test --locked --workspace "$@"
