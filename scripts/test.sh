#!/usr/bin/env bash
# Build everything (library, tools, tests, benchmarks) and run the whole test suite with ctest.
# GPU tests skip with a message when no CUDA device is present.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${MCPM_JOBS:-$(nproc)}
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release ${MCPM_CMAKE_ARGS:-} >/dev/null
cmake --build build -j "$JOBS"
# The server suite drives the real binary with the official openai client (pinned in tests/server).
if command -v npm >/dev/null && [[ ! -d tests/server/node_modules/openai ]]; then
  (cd tests/server && npm ci --no-audit --no-fund --loglevel=error) || echo "test.sh: npm ci failed (offline?); ServerE2E will skip"
fi
ctest --test-dir build --output-on-failure -j "$JOBS" "$@"
