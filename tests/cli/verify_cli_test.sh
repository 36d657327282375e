#!/usr/bin/env bash
# `minicpm data verify` (annealing probe) end to end on a tiny model trained here: the baseline arm is
# bit for bit the decay `minicpm train --resume` runs from the same stable checkpoint (same seed and
# data order); a candidate arm differs; the report has paired differences with standard errors and a
# verdict; a rerun reuses the finished decays and reports the same numbers; bad input is a clear error.
set -uo pipefail
BIN="$1"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
fail=0
check() { if ! eval "$2"; then echo "FAIL: $1"; fail=1; else echo "ok: $1"; fi; }
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
MODEL="$ROOT/models/minicpm4-tiny-chat"

# Two small corpora (the repository's docs as "default" text, a repeated list as the "candidate").
cat "$ROOT"/docs/*.md > "$TMP/default.txt"
for i in $(seq 1 400); do echo "Item $i: the quick brown fox jumps over the lazy dog number $i."; done > "$TMP/cand.txt"
"$BIN" data encode -i "$TMP/default.txt" --tokenizer "$MODEL" -o "$TMP/default.bin" --eval-out "$TMP/heldout.bin" \
  --eval-fraction 0.1 --no-progress > /dev/null 2>&1
"$BIN" data encode -i "$TMP/cand.txt" --tokenizer "$MODEL" -o "$TMP/cand.bin" --no-progress > /dev/null 2>&1
# ARC-format questions for the eval part.
for i in $(seq 1 12); do
  printf '{"id":"q%d","question":"Which animal says meow number %d?","choices":{"text":["a cat","a dog","a fish","a bird"],"label":["A","B","C","D"]},"answerKey":"%s"}\n' \
    "$i" "$i" "$( [ $((i % 2)) = 0 ] && echo A || echo B)"
done > "$TMP/arc.jsonl"

# A WSD run: 10 updates, decay over the last 4, so OUT/stable is the checkpoint at step 6.
"$BIN" train --tokenizer "$MODEL" --train "$TMP/default.bin" --eval "$TMP/heldout.bin" --hidden 64 --layers 2 --heads 2 \
  --kv-heads 1 --ffn 128 --longrope none -b 2 --seq 64 --steps 10 --decay-steps 4 --warmup 2 --lr 0.01 --seed 3 -t 2 -q \
  --eval-interval 0 -o "$TMP/run" > "$TMP/train.txt" 2>&1
check "the WSD run saved its stable checkpoint" '[ -f "$TMP/run/stable/trainer_state.json" ]'

V=("$BIN" data verify --stable "$TMP/run/stable" --candidate "$TMP/cand.bin" --task arc_easy --data "arc_easy=$TMP/arc.jsonl"
   -t 2 -q -o "$TMP/probe")
"${V[@]}" > "$TMP/verify.txt" 2>&1
check "data verify runs and reports" 'grep -q "verdict:" "$TMP/verify.txt" && [ -s "$TMP/probe/verify.json" ]' || cat "$TMP/verify.txt"
# The baseline arm is the decay `train --resume` runs from the stable checkpoint.
"$BIN" train --resume "$TMP/run/stable" -t 2 -q -o "$TMP/resumed" > /dev/null 2>&1
check "the baseline arm equals train --resume from the stable checkpoint, bit for bit" \
  'cmp -s "$TMP/resumed/final/model.safetensors" "$TMP/probe/baseline/final/model.safetensors"'
check "the candidate arm decayed on other data" \
  '[ -s "$TMP/probe/candidate/final/model.safetensors" ] && ! cmp -s "$TMP/probe/baseline/final/model.safetensors" "$TMP/probe/candidate/final/model.safetensors"'
/usr/bin/python3 - "$TMP/probe/verify.json" > "$TMP/check.txt" 2>&1 <<'PY'
import json, math, sys
r = json.load(open(sys.argv[1]))
names = [a["name"] for a in r["arms"]]
assert names == ["baseline", "candidate"], names
for a in r["arms"]:
    assert a["tasks"]["arc_easy"]["n"] == 12, a
    assert a["heldout_loss"] > 0 and a["heldout_tokens"] > 0, a
(c,) = r["comparisons"]
assert c["name"] == "candidate vs baseline", c["name"]
metrics = {d["metric"]: d for d in c["diffs"]}
assert set(metrics) == {"acc", "acc_norm", "gold_nll"}, metrics.keys()
for d in c["diffs"]:
    assert d["n"] == 12
    assert abs(d["diff"] - (d["candidate"] - d["baseline"])) < 1e-9
    assert d["stderr"] is None or d["stderr"] >= 0
    if d["stderr"]:
        assert d["significant"] == (0 if abs(d["diff"]) <= 2 * d["stderr"] else (1 if (d["diff"] > 0) == (d["metric"] != "gold_nll") else -1))
held = r["arms"][1]["heldout_loss"] - r["arms"][0]["heldout_loss"]
assert abs(c["heldout_loss_diff"] - held) < 1e-9 and held != 0
assert c["verdict"] in ("better", "worse", "mixed", "no detectable difference")
print("report ok")
PY
check "verify.json: arms, paired differences, standard errors, verdict" 'grep -q "report ok" "$TMP/check.txt"' || cat "$TMP/check.txt"
# A rerun reuses both decays and reports the same numbers.
cp "$TMP/probe/verify.json" "$TMP/first.json"
"${V[@]}" > "$TMP/verify2.txt" 2>&1
check "a rerun reuses the finished decays" '[ $(grep -c "decay reused" "$TMP/verify2.txt") -eq 2 ]'
check "and reports the same numbers" \
  '[ -s "$TMP/first.json" ] && diff <(grep -v reused "$TMP/first.json") <(grep -v reused "$TMP/probe/verify.json") > /dev/null'

expect_error() {  # description, expected message part, args...
  local what="$1" msg="$2"; shift 2
  "$BIN" "$@" > "$TMP/out.txt" 2>&1
  local rc=$?
  if [ $rc -ne 0 ] && grep -q -- "$msg" "$TMP/out.txt"; then echo "ok: $what"; else echo "FAIL: $what (rc $rc)"; cat "$TMP/out.txt"; fail=1; fi
}
expect_error "a checkpoint in the decay phase is refused" "already in the decay phase" \
  data verify --stable "$TMP/run/final" --candidate "$TMP/cand.bin" --task arc_easy --data "arc_easy=$TMP/arc.jsonl" -o "$TMP/p2"
expect_error "a folder that is no trainer checkpoint" "not a training checkpoint" \
  data verify --stable "$MODEL" --candidate "$TMP/cand.bin" -o "$TMP/p3"
expect_error "a missing candidate shard" "nope.bin" \
  data verify --stable "$TMP/run/stable" --candidate "$TMP/nope.bin" --task arc_easy --data "arc_easy=$TMP/arc.jsonl" -o "$TMP/p4"
expect_error "--mix out of range" "--mix" \
  data verify --stable "$TMP/run/stable" --candidate "$TMP/cand.bin" --mix 0 -o "$TMP/p5"
exit $fail
