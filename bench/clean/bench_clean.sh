#!/usr/bin/env bash
# Throughput of `minicpm data clean`: MB of input per second of wall time and per CPU-second (user +
# sys of every process, i.e. MB/s per core), for one process and for `mpirun -np N`, best of R runs.
#   bench/clean/bench_clean.sh BUILD_DIR [NP] [RUNS] [STAGES] INPUT...
# Extra `data clean` flags go in $CLEAN_FLAGS (e.g. CLEAN_FLAGS="--classifier quality.bin").
# Example (docs/benchmarks.md):
#   bench/clean/bench_clean.sh build-cpu 2 3 all,-fasttext ../shared/data/commoncrawl_raw_sample_697.jsonl \
#       ../shared/data/c4_sample_1000.jsonl ../shared/data/wikipedia_demo_30articles.txt
set -euo pipefail
build=$1; np=${2:-2}; runs=${3:-3}; stages=${4:-all,-fasttext}; shift 4
bin=$build/bin/minicpm
bytes=$(cat "$@" | wc -c)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run_one() {  # label, prefix command (may be empty)
  local label=$1; shift
  local best_wall="" best_cpu=""
  for ((r = 0; r < runs; r++)); do
    rm -rf "$tmp/out"
    /usr/bin/time -f "%e %U %S" -o "$tmp/time" "$@" "$bin" data clean -i "${inputs[@]}" --shards 8 \
      --stages "$stages" ${CLEAN_FLAGS:-} -o "$tmp/out" > "$tmp/log" 2>&1 || { cat "$tmp/log"; exit 1; }
    read -r wall user sys < "$tmp/time"
    cpu=$(echo "$user + $sys" | bc -l)
    if [[ -z $best_wall ]] || (( $(echo "$wall < $best_wall" | bc -l) )); then best_wall=$wall; fi
    if [[ -z $best_cpu ]] || (( $(echo "$cpu < $best_cpu" | bc -l) )); then best_cpu=$cpu; fi
  done
  printf "%-22s %8.2f MB in %6.2f s wall (%6.2f MB/s), %6.2f CPU-s (%6.2f MB/s per core)\n" "$label" \
    "$(echo "$bytes / 1000000" | bc -l)" "$best_wall" "$(echo "$bytes / 1000000 / $best_wall" | bc -l)" \
    "$best_cpu" "$(echo "$bytes / 1000000 / $best_cpu" | bc -l)"
}
inputs=("$@")
echo "$(nproc) cores, load average: $(cut -d' ' -f1-3 /proc/loadavg); stages: $stages; best of $runs"
run_one "1 process"
if command -v mpirun > /dev/null; then
  run_one "mpirun -np $np" mpirun --allow-run-as-root --oversubscribe -np "$np"
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
