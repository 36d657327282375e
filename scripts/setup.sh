#!/usr/bin/env bash
# Set up minicpm.cpp on a fresh Debian 12 machine: install the Debian packages it needs (only the
# missing ones), then configure and build into build/. Safe to run again; it only does what is missing.
#   scripts/setup.sh            install + build (Release; CUDA backend too when nvcc is found)
#   MCPM_SKIP_APT=1 scripts/setup.sh   build only
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential cmake ninja-build pkg-config git
      libhwy-dev libsentencepiece-dev sentencepiece libfasttext-dev nlohmann-json3-dev libcpp-httplib-dev
      libcli11-dev libfmt-dev libspdlog-dev libutf8proc-dev libre2-dev libxxhash-dev libzstd-dev
      libgtest-dev libgmock-dev libbenchmark-dev libeigen3-dev g++-aarch64-linux-gnu
      python3 python3-numpy python3-torch python3-matplotlib)

if [[ "${MCPM_SKIP_APT:-0}" != 1 ]]; then
  missing=()
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi

JOBS=${MCPM_JOBS:-$(nproc)}
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release ${MCPM_CMAKE_ARGS:-} >/dev/null
cmake --build build -j "$JOBS" --target minicpm
echo "setup: built build/bin/minicpm"
