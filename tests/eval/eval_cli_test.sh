#!/usr/bin/env bash
# `minicpm eval` as users run it, on the bundled model: a crafted ARC file (always), two identical
# runs give identical --json per-document log-likelihoods, bad records are reported with file:line,
# an empty file fails clearly; with ../shared/data present also every local task with --limit.
set -euo pipefail
BIN="$1"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cat > "$TMP/arc.jsonl" <<'JSONL'
{"prompt": "Which is a gas?", "choices": ["ice", "steam", "rock"], "answer_idx": 1}
{"question": "What do plants need?", "choices": {"text": ["sunlight", "sand"], "label": ["A", "B"]}, "answerKey": "A"}
{"prompt": "broken"
{"prompt": "2 + 2?", "choices": ["4", "5", "22"], "answer_idx": 0}
JSONL
"$BIN" eval --task arc_easy --data "$TMP/arc.jsonl" -t 2 --json "$TMP/a.json" > "$TMP/out.txt" 2> "$TMP/err.txt" || fail "eval failed: $(cat "$TMP/err.txt")"
"$BIN" eval --task arc_easy --data "$TMP/arc.jsonl" -t 1 --json "$TMP/b.json" -q > /dev/null 2>&1 || fail "second eval failed"
grep -q "arc_easy" "$TMP/out.txt" || fail "no result table: $(cat "$TMP/out.txt")"
grep -q "acc_norm" "$TMP/out.txt" || fail "no acc_norm"
grep -q "arc.jsonl:3: malformed JSON" "$TMP/err.txt" || fail "bad record not reported: $(cat "$TMP/err.txt")"
python3 - "$TMP/a.json" "$TMP/b.json" <<'PY' || fail "json check"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
r = a["results"]["arc_easy"]
assert r["n"] == 3 and r["n_records"] == 4 and r["n_issues"] == 1, r
assert 0 <= r["acc"] <= 1 and r["acc_stderr"] is not None and abs(r["chance"] - (1/3 + 1/2 + 1/3) / 3) < 1e-12, r
docs = a["docs"]["arc_easy"]
assert [len(d["loglik"]) for d in docs] == [3, 2, 3], docs
assert all(l < 0 for d in docs for l in d["loglik"])
# Same logliks with 1 and 2 threads up to fp32 reduction order.
for x, y in zip(docs, b["docs"]["arc_easy"]):
    for u, v in zip(x["loglik"], y["loglik"]):
        assert abs(u - v) <= 1e-3 * max(1, abs(v)), (u, v)
print("json ok")
PY
: > "$TMP/empty.jsonl"
if "$BIN" eval --task piqa --data "$TMP/empty.jsonl" -q > "$TMP/e.txt" 2>&1; then fail "empty file accepted"; fi
grep -q "empty file" "$TMP/e.txt" || fail "empty file not reported: $(cat "$TMP/e.txt")"
if "$BIN" eval --task nosuch -q > "$TMP/e.txt" 2>&1; then fail "unknown task accepted"; fi
grep -q "unknown task 'nosuch'" "$TMP/e.txt" || fail "unknown task message: $(cat "$TMP/e.txt")"

DATA="${MCPM_DATA:-$ROOT/../shared/data}"
if [ -d "$DATA" ]; then
  MCPM_DATA="$DATA" "$BIN" eval --task arc_easy,piqa,mmlu,mmlu_continuation,gsm8k --limit 2 --max-gen-tokens 24 -t 2 -q \
    --json "$TMP/all.json" > "$TMP/all.txt" 2>&1 || fail "local tasks: $(cat "$TMP/all.txt")"
  python3 - "$TMP/all.json" <<'PY' || fail "local json"
import json, sys
r = json.load(open(sys.argv[1]))["results"]
for t in ["arc_easy", "piqa", "mmlu", "mmlu_continuation", "gsm8k"]:
    assert r[t]["n"] == 2, (t, r[t])
assert r["gsm8k"]["shots"] == 5 and "exact_match,strict-match" in r["gsm8k"], r["gsm8k"]
assert "acc_norm" not in r["mmlu"] and "subjects" in r["mmlu"], r["mmlu"]
print("local tasks ok")
PY
else
  echo "SKIP local tasks: $DATA (../shared/data) is not present"
fi
echo "EvalCli passed"
