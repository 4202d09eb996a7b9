#!/usr/bin/env bash
# Measures the README's per-language table: builds the `hello` template of `plughost new` in Rust (wasip2 and
# lean), Python, JavaScript and C with `plughost build`, then runs host/benches/languages.rs (release) on the five
# components.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PLUGHOST_TOOLCHAINS="${PLUGHOST_TOOLCHAINS:-$PWD/target/toolchains}"
cargo build --locked --release -p plughost
P=$PWD/target/release/plughost
work=$PWD/target/bench-languages
rm -rf "$work" && mkdir -p "$work"
spec=()
for lang in rust rust-lean python js c; do
  flags=(--lang "${lang%-lean}")
  [[ $lang == *-lean ]] && flags+=(--lean)
  (cd "$work" && "$P" new "hello-$lang" "${flags[@]}" >/dev/null && cd "hello-$lang" &&
    CARGO_TARGET_DIR="$PWD/../../template-guests" "$P" build)
  spec+=("$lang=$work/hello-$lang/hello-$lang.wasm")
done
BENCH_COMPONENTS="$(IFS=,; echo "${spec[*]}")" cargo bench --locked -p plughost --bench languages
