#!/usr/bin/env bash
# Trains the EAGLE draft head shipped with the bundled model (models/minicpm4-tiny-chat/eagle/) and
# measures it (docs/speculative.md "Training a draft head"):
#   1. minicpm train-draft on the first 400 Alpaca instructions of ../shared/data/alpaca_5000.json
#      (the target writes the responses itself);
#   2. minicpm bench --spec eagle on 20 held-out Alpaca instructions (records 4980-4999, never trained
#      on), greedy, 128 tokens, plain vs speculative in the same run (the outputs must be identical).
# Takes about 10 minutes on 2 shared cores (9.5 min for the shipped draft, load average ~10).
#
# Usage: scripts/train-bundled-draft.sh [OUT]     (default models/minicpm4-tiny-chat/eagle)
# Env:   BUILD (default build-cpu), THREADS (default 2), SHARED (default ../shared/data), STEPS (1000)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${1:-$ROOT/models/minicpm4-tiny-chat/eagle}
BUILD=${BUILD:-build-cpu}
THREADS=${THREADS:-2}
SHARED=${SHARED:-$ROOT/../shared/data}
STEPS=${STEPS:-1000}
MINICPM=${MINICPM:-$ROOT/$BUILD/bin/minicpm}
MODEL=$ROOT/models/minicpm4-tiny-chat
[ -f "$SHARED/alpaca_5000.json" ] || { echo "error: $SHARED/alpaca_5000.json not found (set SHARED=...)" >&2; exit 1; }
[ -x "$MINICPM" ] || { echo "error: $MINICPM not built (cmake --build $BUILD --target minicpm)" >&2; exit 1; }

"$MINICPM" train-draft -m "$MODEL" -o "$OUT" -i "$SHARED/alpaca_5000.json" --field instruction --max-prompts 400 \
  --gen-tokens 128 --temperature 0.7 --steps "$STEPS" --train-batch 8 --seq-len 256 --lr 3e-3 --seed 1 \
  --no-progress --log-every 100 -t "$THREADS"

HELD=$(mktemp)
trap 'rm -f "$HELD"' EXIT
/usr/bin/python3 - "$SHARED/alpaca_5000.json" > "$HELD" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))[4980:5000]:
    print(r["instruction"].replace("\n", " "))
PY
for FLAGS in "" "--spec-depth 3 --spec-topk 2 --spec-tree 6" "--spec-depth 4 --spec-topk 2 --spec-tree 6"; do
  echo "== bench --spec eagle $FLAGS"
  "$MINICPM" bench -m "$MODEL" --spec eagle --draft "$OUT" --prompts "$HELD" --chat -n 128 -t "$THREADS" $FLAGS
done
