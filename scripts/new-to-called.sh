#!/usr/bin/env bash
# new-to-called.sh BIN LANG: times plughost new → build → keys → sign → install → call of the template's hello tool, in a
# fresh data dir (toolchains warm: run one build first). README "Write a plugin" quotes it. LANG: rust|python|js|c
set -euo pipefail
BIN=$1; L=$2
export PLUGHOST_HOME=$(mktemp -d) PLUGHOST_TOOLCHAINS=${PLUGHOST_TOOLCHAINS:-$(cd "$(dirname "$0")/.." && pwd)/target/toolchains}
work=$(mktemp -d); cd "$work"
t() { local s=$(date +%s.%N); "$@" >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }; awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN { print b - a }'; }
start=$(date +%s.%N)
a=$(t $BIN new demo --lang "$L")
cd demo
b=$(t $BIN build)
c=$(t $BIN keys generate --name me --trust)
d=$(t $BIN sign demo.wasm --key me)
e=$(t $BIN install demo.wasm --yes)
f=$(t $BIN call demo hello --args '{"name":"x"}')
total=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
LC_NUMERIC=C printf '%s: new %.1f build %.1f keys %.1f sign %.1f install %.1f call %.2f total %.1f s (load %s)\n' "$L" $a $b $c $d $e $f $total "$(cut -d' ' -f1 /proc/loadavg)"
rm -rf "$work" "$PLUGHOST_HOME"
