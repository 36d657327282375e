#!/usr/bin/env bash
# Cross-compiles the portable CPU kernels (Highway NEON/SVE paths) and the core for 64-bit ARM with
# aarch64-linux-gnu-g++, to prove they build there. The x86-only files (AMX, AVX512-BF16) are left
# out exactly as src/kernels/CMakeLists.txt leaves them out on non-x86 machines.
# Exit 77 (ctest: skipped) when the cross compiler is not installed.
set -euo pipefail
cd "$(dirname "$0")/.."
CXX=${AARCH64_CXX:-aarch64-linux-gnu-g++}
command -v "$CXX" >/dev/null || { echo "skipped: $CXX not installed (Debian package g++-aarch64-linux-gnu)"; exit 77; }
inc=$(mktemp -d)
trap 'rm -rf "$inc"' EXIT
# Only the header-only / arch-independent third-party headers; the libc++ headers come from the cross sysroot.
for d in hwy fmt spdlog nlohmann; do ln -s "/usr/include/$d" "$inc/$d"; done
files=$(ls src/core/*.cpp src/kernels/*.cpp src/kernels/ref/*.cpp src/kernels/cpu/*.cpp src/train/gemm.cpp | grep -v -e '_amx' -e '_x86')
n=0
for f in $files; do
  "$CXX" -std=c++20 -O1 -Isrc -isystem "$inc" -c "$f" -o /dev/null
  n=$((n + 1))
done
echo "aarch64: $n files compiled ($($CXX --version | head -1))"
