#!/usr/bin/env bash
# Build everything (library, tools, tests, benchmarks) and run the whole test suite with ctest.
# GPU tests skip with a message when no CUDA device is present.
set -euo pipefail
cd "$(dirname "$0")/.."
# The build's packages plus what only the tests need (scripts/packages.sh).
source scripts/packages.sh
bash scripts/install-packages.sh "${BUILD_PKGS[@]}" "${TEST_PKGS[@]}"
JOBS=${MCPM_JOBS:-$(nproc)}
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DMCPM_BUILD_TESTS=ON -DMCPM_BUILD_BENCH=ON ${MCPM_CMAKE_ARGS:-} >/dev/null
cmake --build build -j "$JOBS"
ctest --test-dir build --output-on-failure -j "$JOBS" "$@"
