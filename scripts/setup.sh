#!/usr/bin/env bash
# Set up minicpm.cpp on a fresh Debian 12 machine: install the Debian packages it needs (only the
# missing ones), then configure and build into build/. Safe to run again; it only does what is missing.
#   scripts/setup.sh            install + build (Release; CUDA backend too when nvcc is found)
#   MCPM_SKIP_APT=1 scripts/setup.sh   build only
#   scripts/setup.sh --reference        only the packages of the PyTorch reference tools
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/packages.sh
if [[ "${1:-}" == "--reference" ]]; then
  bash scripts/install-packages.sh "${REFERENCE_PKGS[@]}"
  exit 0
fi
bash scripts/install-packages.sh "${BUILD_PKGS[@]}"

JOBS=${MCPM_JOBS:-$(nproc)}
# Tests and benchmarks are configured by scripts/test.sh (they need GoogleTest / Google Benchmark).
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DMCPM_BUILD_TESTS=OFF -DMCPM_BUILD_BENCH=OFF ${MCPM_CMAKE_ARGS:-} >/dev/null
cmake --build build -j "$JOBS" --target minicpm
echo "setup: built build/bin/minicpm"
