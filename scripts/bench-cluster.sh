#!/usr/bin/env bash
# Benchmarks of the cluster (not tests; README "Cluster" quotes them). On this machine, with the binaries of the
# profile in PROFILE (default debug: say which when quoting):
#  1. per call, SQLite vs PostgreSQL: one replica, N sequential stateless echo calls; the plughost process's CPU
#     (utime+stime from /proc) per call, and on PostgreSQL the server processes' CPU per call (the store's share on
#     the other side of the socket);
#  2. throughput through haproxy with 1 and 3 replicas at C=8 and C=32 (registry/examples/mcp_load.rs).
#
#   scripts/bench-cluster.sh [SECONDS=10]        # PROFILE=release for release binaries
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}; PROFILE=${PROFILE:-debug}
REL=; [ "$PROFILE" = release ] && REL=--release
cargo build -q $REL -p plughost --bin plughost
cargo build -q $REL -p plughost-registry --example mcp_load
BIN=target/$PROFILE/plughost; LOAD=target/$PROFILE/examples/mcp_load
FIX=target/guests/wasm32-wasip2/guest/fixture_basic.wasm
[ -f "$FIX" ] || { echo "no $FIX: build the test fixtures first (cargo test -p plughost --test cluster --no-run)" >&2; exit 1; }
eval "$(bash scripts/postgres.sh)"
bash scripts/haproxy.sh --install >/dev/null
DB=bench_$$; psql "$PLUGHOST_TEST_PG" -XAtq -c "CREATE DATABASE $DB"
URL=${PLUGHOST_TEST_PG%/*}/$DB
W=$(mktemp -d); PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true
            psql "$PLUGHOST_TEST_PG" -XAtq -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
export PLUGHOST_LOG=warn
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
pg_ticks() { local t=0 p; for p in $(pgrep -u postgres postgres); do t=$((t + $(ticks "$p" 2>/dev/null || echo 0))); done; echo $t; }
HZ=$(getconf CLK_TCK)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# The operator: a key, the fixture signed, installed in a SQLite data dir and in the shared store.
OP=$W/op; mkdir -p "$OP"; cp "$FIX" "$OP/basic.wasm"
( cd "$OP"; export PLUGHOST_HOME=$OP
  $OLDPWD/$BIN keys generate --name acme --trust >/dev/null
  $OLDPWD/$BIN sign basic.wasm --key acme --request state --request log >/dev/null
  $OLDPWD/$BIN install basic.wasm --yes >/dev/null
  $OLDPWD/$BIN --store "$URL" install basic.wasm --yes >/dev/null )

# start_replica HOME [--store URL] -> "PID ADDR"
start_replica() {
  local home=$1; shift; local port; port=$(free_port)
  PLUGHOST_HOME=$home $BIN "$@" serve --http "127.0.0.1:$port" >"$home.log" 2>&1 &
  local pid=$!; PIDS+=("$pid")
  for _ in $(seq 1 600); do curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
  echo "$pid 127.0.0.1:$port"
}

echo "== 1. per call: plughost CPU and the store's share (sequential calls, C=1, ${SECS}s each)"
for store in sqlite postgres; do
  H=$W/r-$store; mkdir -p "$H"
  if [ $store = sqlite ]; then cp -r "$OP"/. "$H"/; read -r PID ADDR < <(start_replica "$H"); 
  else read -r PID ADDR < <(start_replica "$H" --store "$URL"); fi
  "$LOAD" "$ADDR" 1 2 >/dev/null   # warm: compile cache, instances
  a=$(ticks "$PID"); pa=$(pg_ticks)
  out=$("$LOAD" "$ADDR" 1 "$SECS")
  b=$(ticks "$PID"); pb=$(pg_ticks)
  calls=$(echo "$out" | sed -E 's/.*"calls":([0-9]+).*/\1/')
  echo "$store: $out"
  awk -v a="$a" -v b="$b" -v pa="$pa" -v pb="$pb" -v n="$calls" -v hz="$HZ" -v s=$store 'BEGIN {
    printf "  %s: plughost CPU %.0f us/call", s, (b-a)/hz*1e6/n;
    if (s == "postgres") printf ", PostgreSQL server CPU %.0f us/call", (pb-pa)/hz*1e6/n;
    printf "\n" }'
  kill "$PID"; wait "$PID" 2>/dev/null || true
done

echo "== 2. throughput through haproxy (PostgreSQL store), ${SECS}s per run"
REPS=()
for i in 1 2 3; do H=$W/rep$i; mkdir -p "$H"; read -r PID ADDR < <(start_replica "$H" --store "$URL"); REPS+=("$ADDR"); done
for n in 1 3; do
  port=$(free_port)
  bash scripts/haproxy.sh "$port" "${REPS[@]:0:$n}" 2>/dev/null & HP=$!; PIDS+=("$HP")
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
  "$LOAD" "127.0.0.1:$port" 4 2 >/dev/null  # warm every replica
  for c in 8 32; do echo "replicas=$n C=$c: $("$LOAD" "127.0.0.1:$port" "$c" "$SECS")"; done
  kill "$HP"; wait "$HP" 2>/dev/null || true
done
echo "ledger: $(PLUGHOST_HOME=$OP $BIN --store "$URL" ledger verify)"
