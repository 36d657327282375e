#!/usr/bin/env bash
# Regenerates tests/data/golden from scratch:
#   1. manifest.json from CASES in tools/reference/minicpm_ref.py (cases, tokens, tolerances);
#   2. each case's checkpoint, written by the C++ writer (mcpm-golden-checkpoints) into a temp folder;
#   3. <case>.bin, the PyTorch reference logits (fp32, HF eager order) for every position;
#   4. a verify pass that recomputes them and prints the fp64 / hf-bf16 differences.
# Usage (from anywhere): tools/reference/make_goldens.sh
#   BUILD=<build dir>   (default build-golden; configured here when missing)
#   PYTHON=<python>     (default /usr/bin/python3: Debian's python3-torch + numpy)
#   KEEP=<dir>          keep the checkpoints in <dir> instead of a temp folder
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${BUILD:-$ROOT/build-golden}"
PY="${PYTHON:-/usr/bin/python3}"
OUT="$ROOT/tests/data/golden"
REF="$ROOT/tools/reference/minicpm_ref.py"
if [ -n "${KEEP:-}" ]; then
  WORK="$KEEP"
  mkdir -p "$WORK"
else
  WORK="$(mktemp -d)"
  trap 'rm -rf "$WORK"' EXIT
fi

"$PY" -c "import torch, numpy" || { echo "error: $PY has no torch/numpy (install them with: bash scripts/setup.sh --reference)" >&2; exit 1; }
"$PY" "$REF" selftest
"$PY" "$REF" manifest --out "$OUT/manifest.json"
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMCPM_CUDA=OFF -DMCPM_BUILD_BENCH=OFF
fi
cmake --build "$BUILD" --target mcpm-golden-checkpoints test_golden
"$BUILD/bin/mcpm-golden-checkpoints" --manifest "$OUT/manifest.json" --out "$WORK"
"$PY" "$REF" goldens --manifest "$OUT/manifest.json" --checkpoints "$WORK" --out-dir "$OUT"
"$PY" "$REF" verify --manifest "$OUT/manifest.json" --checkpoints "$WORK"
echo "goldens written to $OUT; run $BUILD/bin/test_golden to check the engine against them"
