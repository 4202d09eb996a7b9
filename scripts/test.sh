#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, builds every guest fixture (tests/build.rs) and
# runs every test in the workspace. Plugins in Python, JavaScript and C are built by `plughost build`, which installs
# their pinned toolchains once into target/toolchains (minutes the first time, nothing after).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PLUGHOST_TOOLCHAINS="${PLUGHOST_TOOLCHAINS:-$PWD/target/toolchains}"
cargo test --locked --workspace "$@"
