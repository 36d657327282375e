#!/usr/bin/env bash
# Build everything (library, tools, tests, benchmarks) and run the whole test suite with ctest.
# GPU tests skip with a message when no CUDA device is present.
set -euo pipefail
cd "$(dirname "$0")/.."
# What only the tests need: a real browser (headless Chromium drives the web chat page) and clang
# (libFuzzer). Installed when missing, as scripts/setup.sh does for the build packages.
TEST_PKGS=(chromium clang)
if [[ "${MCPM_SKIP_APT:-0}" != 1 ]]; then
  missing=()
  for p in "${TEST_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "test.sh: installing ${missing[*]}"
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; } ||
      echo "test.sh: could not install ${missing[*]}; the browser / fuzz tests will skip"
  fi
fi
# The server suite drives the real binary with the official openai client and the web page with
# puppeteer-core on Debian's Chromium (both pinned in tests/server/package.json).
if command -v npm >/dev/null && [[ ! -d tests/server/node_modules/openai || ! -d tests/server/node_modules/puppeteer-core ]]; then
  (cd tests/server && npm ci --no-audit --no-fund --loglevel=error) || echo "test.sh: npm ci failed (offline?); ServerE2E will skip"
fi
[[ "${MCPM_DEPS_ONLY:-0}" == 1 ]] && exit 0
JOBS=${MCPM_JOBS:-$(nproc)}
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release ${MCPM_CMAKE_ARGS:-} >/dev/null
cmake --build build -j "$JOBS"
ctest --test-dir build --output-on-failure -j "$JOBS" "$@"
