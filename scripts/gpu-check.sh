#!/usr/bin/env bash
# Build, test and benchmark the CUDA backend on a machine with an NVIDIA GPU, in one command, and
# print a short table (GPU, measured tok/s, HBM roofline, targets). Every log is kept.
#
#   scripts/gpu-check.sh [all|build|test|bench|train-bench|table]      (default: all)
#
# Stages (idempotent, so they can also run as separate calls, e.g. under a 10-minute limit):
#   build  configure build-gpu (-DMCPM_CUDA=ON, CUDA arch from nvidia-smi, else 90) and build
#   test   the CUDA tests (cuda_ops, cuda_model, infllm_cuda, train_cuda) and the CPU golden tests
#   bench  random checkpoints of the real MiniCPM4-0.5B / 8B shapes (written once to $MODEL_DIR;
#          the 8B one is 16 GB), then `minicpm bench --device cuda`: 0.5B decode at 1K context,
#          8B decode at 1K and 128K context, 8B prefill of 32K tokens; InfLLM v2 sparse 8B; and
#          `minicpm train --device cuda` on a ~100M-parameter MiniCPM4-shape model (tokens/s, MFU)
#   table  the summary of whatever results exist (also printed at the end of `all` and `bench`)
#
# Environment: OUT (logs + summary.md; default $BUILD_DIR/gpu-check), BUILD_DIR (default
# build-gpu), MODEL_DIR (default /tmp/mcpm-models), JOBS (build parallelism), CUDA_ARCH (override),
# QUICK=1 (short benches: a smoke test, not numbers to report).
# Docs: docs/gpu.md.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-gpu}
MODEL_DIR=${MODEL_DIR:-/tmp/mcpm-models}
LOG=${OUT:-$BUILD_DIR/gpu-check}
JOBS=${JOBS:-$(nproc)}
QUICK=${QUICK:-0}
BIN=$BUILD_DIR/bin
STAGE=${1:-all}
mkdir -p "$LOG"
FAILED=()

say() { printf '\n=== %s ===\n' "$*" | tee -a "$LOG/gpu-check.log"; }
# run NAME CMD...: runs CMD with its output in $LOG/NAME.log (and on the console), records failure.
run() {
  local name=$1
  shift
  echo "\$ $*" | tee -a "$LOG/gpu-check.log"
  local t0=$SECONDS
  "$@" > >(tee "$LOG/$name.log") 2>&1
  local rc=$?
  echo "[$name] exit $rc after $((SECONDS - t0)) s" | tee -a "$LOG/gpu-check.log"
  [ $rc -eq 0 ] || FAILED+=("$name")
  return $rc
}

cuda_arch() {
  if [ -n "${CUDA_ARCH:-}" ]; then echo "$CUDA_ARCH"; return; fi
  local cc
  cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
  if [[ "$cc" =~ ^[0-9]+$ ]]; then echo "$cc"; else echo 90; fi
}

stage_build() {
  say "build ($BUILD_DIR, sm_$(cuda_arch), $JOBS jobs)"
  nvidia-smi 2>&1 | tee "$LOG/nvidia-smi.log" | head -15
  run configure cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMCPM_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES="$(cuda_arch)" -DMCPM_BUILD_BENCH=OFF || return 1
  run build cmake --build "$BUILD_DIR" -j "$JOBS" --target minicpm mcpm-random-checkpoint cuda_ops cuda_model infllm_cuda train_cuda test_golden
}

stage_test() {
  say "tests"
  [ -x "$BIN/cuda_ops" ] || { echo "not built: run '$0 build' first"; FAILED+=(test-missing); return 1; }
  run test-cuda-ops "$BIN/cuda_ops" --gtest_output="xml:$LOG/cuda_ops.xml"
  run test-cuda-model "$BIN/cuda_model" --gtest_output="xml:$LOG/cuda_model.xml"
  run test-infllm-cuda "$BIN/infllm_cuda" --gtest_output="xml:$LOG/infllm_cuda.xml"
  run test-train-cuda "$BIN/train_cuda" --gtest_output="xml:$LOG/train_cuda.xml"
  run test-golden-cpu "$BIN/test_golden" --gtest_output="xml:$LOG/test_golden.xml"
  if grep -q "SKIPPED.*no CUDA device" "$LOG/test-cuda-ops.log"; then
    echo "WARNING: the CUDA tests were skipped (no CUDA device visible)" | tee -a "$LOG/gpu-check.log"
    FAILED+=(no-gpu)
  fi
}

checkpoint() {  # checkpoint PRESET DIR [extra args]: writes once (marker .complete)
  local preset=$1 dir=$2
  shift 2
  [ -f "$dir/.complete" ] && return 0
  rm -rf "$dir"
  run "checkpoint-$preset" "$BIN/mcpm-random-checkpoint" --preset "$preset" --out "$dir" "$@" && touch "$dir/.complete"
}

# bench NAME MODEL ARGS...: `minicpm bench --device cuda --json`, log in $LOG/bench-NAME.log
bench() {
  local name=$1 model=$2
  shift 2
  run "bench-$name" timeout 900 "$BIN/minicpm" bench -m "$model" --device cuda --json "$@"
}

stage_bench() {
  say "benchmarks (random weights, real shapes)"
  [ -x "$BIN/minicpm" ] || { echo "not built: run '$0 build' first"; FAILED+=(bench-missing); return 1; }
  mkdir -p "$MODEL_DIR"
  local m05=$MODEL_DIR/minicpm4-0.5b-random m8=$MODEL_DIR/minicpm4-8b-random
  checkpoint 0.5B "$m05"
  checkpoint 8B "$m8" --shards 4
  # The same 8B weights with MiniCPM4-8B's InfLLM v2 sparse_config (config only; weights linked).
  local m8s=$MODEL_DIR/minicpm4-8b-random-sparse
  if [ ! -f "$m8s/config.json" ]; then
    mkdir -p "$m8s"
    ln -sf "$m8"/*.safetensors "$m8"/model.safetensors.index.json "$m8"/generation_config.json "$m8s"/
    sed '1a\  "sparse_config": {"kernel_size": 32, "kernel_stride": 16, "init_blocks": 1, "block_size": 64, "window_size": 2048, "topk": 64, "use_nope": false, "dense_len": 8192},' \
      "$m8/config.json" > "$m8s/config.json"
  fi
  if [ "$QUICK" = 1 ]; then
    bench 0.5b-decode-1k "$m05" -c 1024 -n 64 -p 0 -r 1
    bench 8b-decode-1k "$m8" -c 1024 -n 32 -p 0 -r 1
    bench 8b-decode-128k "$m8" -c 16384 -n 16 -p 0 -r 1 -b 4096
    bench 8b-prefill-32k "$m8" -p 4096 -n 0 -b 4096 -r 1
    bench 8b-sparse-decode-128k "$m8s" -c 16384 -n 16 -p 0 -r 1 -b 4096 --sparse on
  else
    bench 0.5b-decode-1k "$m05" -c 1024 -n 256 -p 0 -r 3
    bench 8b-decode-1k "$m8" -c 1024 -n 128 -p 0 -r 3
    bench 8b-decode-128k "$m8" -c 131072 -n 64 -p 0 -r 2 -b 8192
    bench 8b-prefill-32k "$m8" -p 32768 -n 0 -b 32768 -r 2
    bench 8b-sparse-decode-128k "$m8s" -c 131072 -n 64 -p 0 -r 2 -b 8192 --sparse on
    bench 8b-sparse-prefill-128k "$m8s" -p 131072 -n 0 -b 16384 -r 1 --sparse on
    bench 8b-dense-prefill-128k "$m8" -p 131072 -n 0 -b 16384 -r 1
  fi
}

# Training throughput on the GPU: a ~100M-parameter MiniCPM4-shape model (hidden 768, 12 layers,
# 12 heads / 4 kv heads, SwiGLU 2048, vocab 32000, tied), bf16 GEMMs with fp32 master weights,
# 16 x 1024 tokens per step. Data: the repository's docs encoded with the bundled tokenizer (the
# content does not matter for speed). The trainer's progress lines carry tok/s and MFU.
stage_train_bench() {
  say "training benchmark (~100M MiniCPM4 shape, bf16)"
  local shard=$MODEL_DIR/train-bench.bin steps=40
  [ "$QUICK" = 1 ] && steps=12
  if [ ! -f "$shard" ]; then
    cat "$ROOT"/docs/*.md "$ROOT"/README.md > "$MODEL_DIR/train-bench.txt"
    run train-bench-data "$BIN/minicpm" data encode -i "$MODEL_DIR/train-bench.txt" \
      --tokenizer "$ROOT/models/minicpm4-tiny-chat" -o "$shard" --split line --no-progress || return 1
  fi
  rm -rf "$MODEL_DIR/train-bench-run"
  run train-bench timeout 900 "$BIN/minicpm" train --device cuda --train "$shard" --vocab 32000 \
    --hidden 768 --layers 12 --heads 12 --kv-heads 4 --ffn 2048 --dim-model-base 256 --seq 1024 -b 16 \
    --steps "$steps" --warmup 4 --log-interval 4 --eval-interval 0 --lr 0.01 -o "$MODEL_DIR/train-bench-run"
}

json_get() {  # json_get KEY FILE: a number from the JSON line `minicpm bench --json` ends with
  grep '^{' "$2" 2>/dev/null | tail -1 | grep -o "\"$1\":[-0-9.eE+]*" | head -1 | cut -d: -f2
}

stage_table() {
  local gpu
  gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)
  {
    echo "## minicpm.cpp CUDA check — $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "GPU: ${gpu:-unknown}; commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$( [ "$QUICK" = 1 ] && echo ' (QUICK: smoke numbers only)')"
    echo
    echo "| benchmark | measured tok/s | HBM roofline tok/s | % of roofline | read GB/s | target tok/s |"
    echo "|---|---:|---:|---:|---:|---:|"
    local row name kind target f v floor bw pct
    for row in "0.5b-decode-1k decode 1800" "8b-decode-1k decode 170" "8b-decode-128k decode 135" "8b-prefill-32k prefill 25000" \
               "8b-sparse-decode-128k decode 165" "8b-sparse-prefill-128k prefill 33600" "8b-dense-prefill-128k prefill -"; do
      read -r name kind target <<<"$row"
      f=$LOG/bench-$name.log
      if [ ! -f "$f" ]; then echo "| $name | (not run) | | | | $target |"; continue; fi
      v=$(json_get "${kind}_tok_s" "$f")
      floor=$(json_get floor_tok_s "$f")
      bw=$(json_get bandwidth_gbs "$f")
      if [ -z "$v" ]; then echo "| $name | (failed: see bench-$name.log) | | | | $target |"; continue; fi
      if [ "$kind" = decode ] && [ -n "$floor" ]; then
        pct=$(awk -v a="$v" -v b="$floor" 'BEGIN { if (b > 0) printf "%.0f%%", 100 * a / b }')
        printf '| %s | %.1f | %.1f | %s | %.0f | %s |\n' "$name" "$v" "$floor" "$pct" "$bw" "$target"
      else
        printf '| %s | %.1f | — | — | %.0f | %s |\n' "$name" "$v" "$bw" "$target"
      fi
    done
    echo
    if [ -f "$LOG/train-bench.log" ]; then
      local tl
      tl=$(grep -E '^step ' "$LOG/train-bench.log" | tail -1)
      echo "train ~100M bf16 (last progress line): ${tl:-(failed: see train-bench.log)}"
      echo
    fi
    for t in cuda_ops cuda_model infllm_cuda train_cuda test_golden; do
      local x=$LOG/$t.xml
      [ -f "$x" ] || continue
      echo "tests $t: $(grep -o 'tests="[0-9]*"' "$x" | head -1) $(grep -o 'failures="[0-9]*"' "$x" | head -1) $(grep -o 'skipped="[0-9]*"' "$x" | head -1)"
    done
    [ ${#FAILED[@]} -eq 0 ] || echo "failed steps: ${FAILED[*]}"
    echo
    echo "Roofline = measured HBM read bandwidth / bytes read per token (weights + KV cache at that depth)."
  } | tee "$LOG/summary.md"
}

case "$STAGE" in
  build) stage_build ;;
  test) stage_test ;;
  bench) stage_bench; stage_train_bench; stage_table ;;
  train-bench) stage_train_bench; stage_table ;;
  table) stage_table ;;
  all) stage_build && { stage_test; stage_train_bench; stage_bench; }; stage_table ;;
  *) echo "usage: $0 [all|build|test|bench|train-bench|table]"; exit 2 ;;
esac
echo "logs: $LOG"
[ ${#FAILED[@]} -eq 0 ]
