#!/usr/bin/env bash
# Build everything (library, tools, tests, benchmarks) and run the whole test suite with ctest.
# GPU tests skip with a message when no CUDA device is present.
set -euo pipefail
cd "$(dirname "$0")/.."
# The build's packages plus what only the tests need (scripts/packages.sh); a real browser (headless
# Chromium drives the web chat page) and clang (libFuzzer) are best-effort: their tests skip without.
source scripts/packages.sh
bash scripts/install-packages.sh "${BUILD_PKGS[@]}" "${TEST_PKGS[@]}"
bash scripts/install-packages.sh "${TEST_OPTIONAL_PKGS[@]}" ||
  echo "test.sh: could not install ${TEST_OPTIONAL_PKGS[*]}; the browser / fuzz tests will skip"
# The server suite drives the real binary with the official openai client and the web page with
# puppeteer-core on Debian's Chromium (both pinned in tests/server/package.json).
if command -v npm >/dev/null && [[ ! -d tests/server/node_modules/openai || ! -d tests/server/node_modules/puppeteer-core ]]; then
  (cd tests/server && npm ci --no-audit --no-fund --loglevel=error) || echo "test.sh: npm ci failed (offline?); ServerE2E will skip"
fi
[[ "${MCPM_DEPS_ONLY:-0}" == 1 ]] && exit 0
JOBS=${MCPM_JOBS:-$(nproc)}
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DMCPM_BUILD_TESTS=ON -DMCPM_BUILD_BENCH=ON ${MCPM_CMAKE_ARGS:-} >/dev/null
cmake --build build -j "$JOBS"
ctest --test-dir build --output-on-failure -j "$JOBS" "$@"
