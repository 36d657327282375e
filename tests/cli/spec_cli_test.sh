#!/usr/bin/env bash
# The speculative-decoding CLI as a user runs it, on the bundled model: --spec ngram gives the same
# text as plain decoding (greedy and seeded sampling) and reports its statistics; `data freq-vocab`
# writes a torch.save vocabulary with a coverage report; train-draft writes a draft that loads and keeps
# greedy output identical; bad flag combinations fail at start-up, clearly.
set -uo pipefail
BIN="$1"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
fail=0
check() { if ! eval "$2"; then echo "FAIL: $1"; fail=1; else echo "ok: $1"; fi; }
P="The cat sat on the mat. The cat sat on the mat. The cat sat on the mat. The cat"

"$BIN" generate "$P" -n 64 --greedy -q > "$TMP/plain.txt" 2>/dev/null
"$BIN" generate "$P" -n 64 --greedy --spec ngram > "$TMP/ngram.txt" 2> "$TMP/ngram.err"
check "greedy --spec ngram output equals plain" 'cmp -s "$TMP/plain.txt" "$TMP/ngram.txt"'
check "--spec ngram prints its statistics" 'grep -q "spec ngram: mean accepted length" "$TMP/ngram.err"'
"$BIN" generate --chat "Tell me a story." -n 48 --temp 0.9 --seed 7 -q > "$TMP/s_plain.txt" 2>/dev/null
"$BIN" generate --chat "Tell me a story." -n 48 --temp 0.9 --seed 7 -q --spec ngram --spec-tree 6 > "$TMP/s_ngram.txt" 2>/dev/null
check "sampled --spec ngram output equals plain with the same seed" 'cmp -s "$TMP/s_plain.txt" "$TMP/s_ngram.txt"'

MODEL="$(dirname "$BIN")/../../models/minicpm4-tiny-chat"
[ -d "$MODEL" ] || MODEL="$(cd "$(dirname "$0")/../.." && pwd)/models/minicpm4-tiny-chat"
"$BIN" data freq-vocab -i "$(dirname "$0")/../../README.md" --tokenizer "$MODEL" -n 300 -o "$TMP/freq_300.pt" --no-progress > "$TMP/fv.txt" 2>&1
check "freq-vocab writes the file and a coverage report" '[ -s "$TMP/freq_300.pt" ] && grep -q "coverage" "$TMP/fv.txt"'

# train-draft end to end: a few prompts, a few steps; the folder loads as a draft of the bundled
# model and greedy EAGLE output equals plain decoding.
printf 'Tell me about cats.\nWrite a poem about rain.\nWhat is two plus two?\n' > "$TMP/prompts.txt"
"$BIN" train-draft -m "$MODEL" -i "$TMP/prompts.txt" -o "$TMP/draft" --steps 6 --warmup 2 --gen-tokens 16 --fr-size 512 \
  --no-progress --log-every 3 > "$TMP/td.txt" 2>&1
check "train-draft writes a draft folder" '[ -s "$TMP/draft/model.safetensors" ] && [ -s "$TMP/draft/freq_512.pt" ] && grep -q "\"logit_scale\"" "$TMP/draft/config.json" && grep -q "MiniCPMEagle" "$TMP/draft/config.json"'
check "train-draft logs its losses" '[ $(wc -l < "$TMP/draft/train_log.csv") -eq 7 ] && grep -q "top-1 agreement" "$TMP/td.txt"'
"$BIN" generate --chat "Tell me about dogs." -n 48 --greedy -q > "$TMP/e_plain.txt" 2>/dev/null
"$BIN" generate --chat "Tell me about dogs." -n 48 --greedy --spec eagle --draft "$TMP/draft" > "$TMP/e_spec.txt" 2> "$TMP/e_spec.err"
check "greedy --spec eagle with the trained draft equals plain" 'cmp -s "$TMP/e_plain.txt" "$TMP/e_spec.txt" && grep -q "spec eagle: mean accepted length" "$TMP/e_spec.err"'

expect_error() {  # description, expected message part, args...
  local what="$1" msg="$2"; shift 2
  "$BIN" "$@" > "$TMP/out.txt" 2>&1
  local rc=$?
  check "$what" '[ $rc -ne 0 ] && grep -q -- "$msg" "$TMP/out.txt"'
}
mkdir -p "$TMP/nodraft"
for f in "$(cd "$MODEL" && pwd)"/*; do [ -f "$f" ] && ln -s "$f" "$TMP/nodraft/"; done
expect_error "--spec eagle needs --draft (a model without eagle/)" "needs --draft" generate hi --spec eagle -m "$TMP/nodraft"
if [ -d "$MODEL/eagle" ]; then  # the draft shipped with the bundled model is used without --draft
  "$BIN" generate --chat "Tell me about dogs." -n 48 --greedy --spec eagle > "$TMP/b_spec.txt" 2> "$TMP/b_spec.err"
  check "--spec eagle alone uses the bundled model's eagle/ draft, output equals plain" 'cmp -s "$TMP/e_plain.txt" "$TMP/b_spec.txt" && grep -q "eagle" "$TMP/b_spec.err"'
fi
expect_error "--draft without --spec eagle" "--spec is off" generate hi --draft /tmp
expect_error "--spec-tree out of range" "--spec-tree must be in 0..64" generate hi --spec ngram --spec-tree 99
expect_error "a missing draft folder" "no such folder" generate hi --spec eagle --draft /no/such/draft
expect_error "a model folder given as a draft" "not an EAGLE draft head" generate hi --spec eagle --draft "$MODEL"
expect_error "train-draft without prompt files" "give prompt files with -i" train-draft -m "$MODEL" -o "$TMP/d2"
exit $fail
