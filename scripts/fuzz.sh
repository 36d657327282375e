#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz, clang + ASan + UBSan) in build-fuzz and runs each one:
#   bash scripts/fuzz.sh                    # short run of every target (ctest -L fuzz; 2000 inputs each)
#   bash scripts/fuzz.sh --time 3600 fuzz_jinja fuzz_shard   # an hour each of the named targets
# Long runs keep their corpus in build-fuzz/tests/fuzz/work/<target>/corpus. See docs/fuzzing.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/packages.sh
bash scripts/install-packages.sh "${BUILD_PKGS[@]}" "${FUZZ_PKGS[@]}"
TIME=""
if [[ ${1:-} == --time ]]; then TIME=$2; shift 2; fi
TARGETS=("$@")
ALL=(fuzz_safetensors fuzz_model_spec fuzz_tokenizer_json fuzz_tokenizer_config fuzz_jinja fuzz_shard
     fuzz_records fuzz_checkpoint_index fuzz_torch_ids fuzz_clean_input)
((${#TARGETS[@]})) || TARGETS=("${ALL[@]}")
JOBS=${MCPM_JOBS:-$(nproc)}
LAUNCHER=(); command -v ccache >/dev/null && LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
# ctest's per-target limit: the TIMEOUT property wins over `ctest --timeout`, so a long run sets it.
LIMIT=600; [[ -n $TIME ]] && LIMIT=$((TIME + 900))
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Release -DMCPM_FUZZ=ON -DMCPM_CUDA=OFF \
  -DMCPM_BUILD_TESTS=OFF -DMCPM_BUILD_BENCH=OFF -DMCPM_FUZZ_TEST_TIMEOUT=$LIMIT "${LAUNCHER[@]}" >/dev/null
cmake --build build-fuzz -j "$JOBS" --target "${TARGETS[@]}"
regex="^($(IFS='|'; echo "${TARGETS[*]}"))\$"
if [[ -n $TIME ]]; then
  MCPM_FUZZ_TIME=$TIME ctest --test-dir build-fuzz --output-on-failure --timeout $((TIME + 600)) -R "$regex"
else
  ctest --test-dir build-fuzz --output-on-failure -j "$JOBS" -R "$regex"
fi
