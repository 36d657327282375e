#!/usr/bin/env bash
# Builds the whole project and its tests with -fsanitize=address,undefined (gcc, CPU only, no
# benchmarks) in build-asan and runs the whole ctest suite there. Any ASan/UBSan report fails its
# test (-fno-sanitize-recover; leaks fail at exit). Called by .ci/run after scripts/test.sh (two slow
# tests left out there, see .ci/run).
#   bash scripts/asan-tests.sh [ctest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/packages.sh
bash scripts/install-packages.sh "${BUILD_PKGS[@]}" "${TEST_PKGS[@]}"
JOBS=${MCPM_JOBS:-$(nproc)}
LAUNCHER=(); command -v ccache >/dev/null && LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMCPM_SANITIZE=ON -DMCPM_CUDA=OFF \
  -DMCPM_BUILD_TESTS=ON -DMCPM_BUILD_BENCH=OFF "${LAUNCHER[@]}" ${MCPM_CMAKE_ARGS:-} >/dev/null
cmake --build build-asan -j "$JOBS"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --test-dir build-asan --output-on-failure -j "$JOBS" "$@"
