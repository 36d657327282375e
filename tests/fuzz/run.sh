#!/usr/bin/env bash
# ctest entry: builds the request-parsing fuzzer with clang (-fsanitize=fuzzer,address,undefined) and
# runs it for a short time on the seed corpus. Skips (77) without clang / libFuzzer.
#   run.sh SOURCE_DIR BUILD_DIR [SECONDS]
set -euo pipefail
src="$1"; out="$2/fuzz"; secs="${3:-20}"
CXX=$(command -v clang++ || command -v clang++-14 || true)
[[ -n "$CXX" ]] || { echo "skip: clang++ is not installed"; exit 77; }
mkdir -p "$out/work"
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' > "$out/probe.cpp"
"$CXX" -fsanitize=fuzzer "$out/probe.cpp" -o "$out/probe" 2>/dev/null || { echo "skip: $CXX has no libFuzzer"; exit 77; }
FLAGS=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I"$src/src")
if [[ ! -x "$out/fuzz_request" || -n "$(find "$src/src/server" "$src/src/runtime" "$src/tests/fuzz" -newer "$out/fuzz_request" -name '*.[ch]*' | head -1)" ]]; then
  echo "building the fuzzer with $CXX"
  "$CXX" "${FLAGS[@]}" "$src/tests/fuzz/fuzz_request.cpp" "$src/src/server/request.cpp" "$src/src/server/tool_calls.cpp" \
    "$src/src/runtime/json_constraint.cpp" "$src/src/runtime/valid_utf8.cpp" -lfmt -o "$out/fuzz_request"
fi
cp -n "$src"/tests/fuzz/corpus/* "$out/work/" 2>/dev/null || true
cd "$out"
exec ./fuzz_request -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 work
