# Recipes for people (https://github.com/casey/just). CI and README use scripts/ directly, so `just` is optional.

# Build everything and run the bundled plugins.
run:
    ./scripts/run.sh

# The whole test suite.
test:
    ./scripts/test.sh

# Build the bundled plugins into guests/*.wasm.
guests:
    ./scripts/build-guests.sh

# Formatting and lints, as CI runs them.
check:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# The per-call benchmark (release build).
bench:
    cargo bench -p plughost --bench calls
