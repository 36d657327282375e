#!/usr/bin/env bash
# Short (ctest) or long run of one libFuzzer target.
#   run_fuzz.sh BINARY NAME WORKDIR [SEED...]
# Replays tests/fuzz/regressions/NAME/* first (every input that once crashed must now pass), then
# fuzzes from a seed corpus assembled at run time from the SEED paths (files or folders; paths under
# ../shared that are absent are skipped with a message; nothing is copied into the repository).
# A SEED of the form jinja:FILE adds FILE's "chat_template"; spec:CONFIG:GEN adds CONFIG + NUL + GEN.
# Environment: MCPM_FUZZ_RUNS (default 2000) or MCPM_FUZZ_TIME (seconds; overrides runs),
# MCPM_FUZZ_ARGS (extra libFuzzer flags), MCPM_FUZZ_MAX_LEN (-max_len; default from CMake, else 1 MiB).
set -euo pipefail
bin=$1 name=$2 work=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
seeds=$work/seeds corpus=$work/corpus
rm -rf "$seeds"
mkdir -p "$seeds" "$corpus"
n=0
add() { cp -f "$1" "$seeds/$(printf '%03d' $n)-$(basename "$1")"; n=$((n + 1)); }
for s in "$@"; do
  case $s in
    jinja:*)
      f=${s#jinja:}
      [[ -f $f ]] || { echo "note: seed $f absent, skipped"; continue; }
      python3 -c 'import json,sys; t=json.load(open(sys.argv[1])).get("chat_template"); t and sys.stdout.write(t if isinstance(t,str) else t[0]["template"])' "$f" \
        >"$seeds/$(printf '%03d' $n)-template-$(basename "$f")" || true
      n=$((n + 1)) ;;
    spec:*)
      IFS=: read -r _ c g <<<"$s"
      [[ -f $c && -f $g ]] || { echo "note: seed $c / $g absent, skipped"; continue; }
      { cat "$c"; printf '\0'; cat "$g"; } >"$seeds/$(printf '%03d' $n)-with-gen-$(basename "$c")"
      n=$((n + 1)) ;;
    *)
      if [[ -d $s ]]; then for f in "$s"/*; do [[ -f $f ]] && add "$f"; done
      elif [[ -f $s ]]; then add "$s"
      else echo "note: seed $s absent, skipped"; fi ;;
  esac
done
echo "$name: $n seed inputs in $seeds"
common=(-artifact_prefix="$work/" -rss_limit_mb=2560 -timeout=30 -max_len=${MCPM_FUZZ_MAX_LEN:-${MCPM_FUZZ_DEFAULT_MAX_LEN:-1048576}} -print_final_stats=1)
reg=$here/regressions/$name
if [[ -d $reg ]] && compgen -G "$reg/*" >/dev/null; then
  echo "$name: replaying $(ls "$reg" | wc -l) regression inputs"
  "$bin" "${common[@]}" "$reg"/*
fi
if [[ -n ${MCPM_FUZZ_TIME:-} ]]; then limit=(-max_total_time="$MCPM_FUZZ_TIME")
else limit=(-runs="${MCPM_FUZZ_RUNS:-2000}"); fi
dirs=("$corpus" "$seeds")
[[ -d $reg ]] && dirs+=("$reg")
exec "$bin" "${common[@]}" "${limit[@]}" ${MCPM_FUZZ_ARGS:-} "${dirs[@]}"
