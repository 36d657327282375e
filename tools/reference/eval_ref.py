#!/usr/bin/python3
"""Independent Python references for `minicpm eval` (tests/eval): the golden files in tests/data/eval.

Written from lm-evaluation-harness's semantics (../shared/docs/eval-data.md §1), not from the C++ code.
Needs only Debian's python3 (+ python3-torch and numpy for `loglik`). Subcommands:

  random   py_random.json: CPython random.Random(seed) draws (getrandbits, _randbelow, random,
           sample(range(n), k) three times in a row), including GSM8K's first few-shot draws
           (seed 1234 over 7,473 train rows).
  text     text_cases.json: lm-eval's GSM8K filters on crafted responses (strict-match regex
           "#### (\\-?[0-9\\.\\,]+)" first match; flexible-extract "(-?[$0-9.,]{2,})|(-?[0-9]+)"
           last match, first non-empty group; fallback "[invalid]"), exact_match with gsm8k.yaml's
           regexes_to_ignore + ignore_case, HellaSwag's preprocess(), str.capitalize / strip.
  loglik   loglik_golden.json: for a tiny random checkpoint (a golden case of tests/data/golden, written
           by mcpm-golden-checkpoints), requests (context ids, several continuations) and, per
           continuation, lm-eval's loglikelihood: sum over the continuation of log_softmax(logits)[target]
           from one fp32 forward (tools/reference/minicpm_ref.py) of (context + continuation)[:-1],
           and is_greedy (every target is the argmax).

Regenerate: tools/reference/eval_ref.py random --out tests/data/eval/py_random.json
            tools/reference/eval_ref.py text --out tests/data/eval/text_cases.json
            build-cpu/bin/mcpm-golden-checkpoints --out /tmp/gc --case f32_hd32_plain_rope_mup
            tools/reference/eval_ref.py loglik --checkpoint /tmp/gc/f32_hd32_plain_rope_mup \
                --out tests/data/eval/loglik_golden.json
"""
import argparse
import json
import os
import random
import re
import sys


def cmd_random(args):
    out = {}
    r = random.Random(1234)
    out["seed1234_genrand32"] = [r.getrandbits(32) for _ in range(10)]
    cases = []
    for seed in [1234, 0, 1, 42, 2**32 + 5, 987654321987]:
        for (n, k) in [(7473, 5), (7473, 6), (2376, 1), (20, 5), (21, 5), (22, 5), (10, 10), (1000, 25), (50, 8),
                       (3, 3)]:
            r = random.Random(seed)
            cases.append(dict(seed=seed, n=n, k=k, draws=[r.sample(range(n), k) for _ in range(3)]))
    out["sample"] = cases
    r = random.Random(1234)
    out["randbelow_1234_n"] = [1, 2, 3, 7, 100, 1000, 7473, 65536, 65537, 2**31 + 1]
    out["randbelow_1234"] = [r._randbelow(n) for n in out["randbelow_1234_n"]]
    r = random.Random(1234)
    out["random_1234"] = [r.random() for _ in range(3)]
    r = random.Random(1234)
    out["gsm8k_train_first3"] = [r.sample(range(7473), 5) for _ in range(3)]
    out["python"] = sys.version.split()[0]
    json.dump(out, open(args.out, "w"))


STRICT = re.compile(r"#### (\-?[0-9\.\,]+)")
FLEX = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
IGNORE = [",", "\\$", "(?s).*#### ", "\\.$"]


def regex_filter(regex, resp, group_select):
    match = regex.findall(resp)
    if not match:
        return "[invalid]"
    match = match[group_select]
    if isinstance(match, tuple):
        match = [m for m in match if m]
        match = match[0] if match else "[invalid]"
    return match.strip()


def normalize(s):
    for pat in IGNORE:
        s = re.sub(pat, "", s)
    return s.lower()


def hellaswag_preprocess(text):
    text = text.strip()
    text = text.replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    text = text.replace("  ", " ")
    return text


def cmd_text(args):
    responses = [
        " She has 16 - 3 - 4 = 9 eggs.\n#### 18",
        " The answer is 42.",
        " #### -5\n#### 7",
        " #### - 5",
        " #### -.5 and more",
        " costs $1,234.50 in total",
        " first 3 then 45 then -7",
        " -- 4",
        " no numbers here",
        "",
        " 12\n\nQuestion: what",
        " x = 5, y = 10.",
        " 3.14159 is pi; answer: 1,000",
        " the total is $.",
        " -$5 and -1",
        " #### 1,000.",
        "####5",
        " 7-3 = 4",
        " 1.2.3 then a-b",
        " He pays 2*$3 = $<<2*3=6>>6\n#### 6",
    ]
    golds = ["Janet ... #### 18", "a\n#### 42", "#### 7", "#### 5", "#### 0.5", "#### 1234.50", "#### -7",
             "#### 4", "#### 0", "#### 1", "#### 12", "#### 10", "#### 1000", "#### 5", "#### -1", "#### 1000",
             "#### 5", "#### 4", "#### 1.2.3", "#### 6"]
    cases = []
    for resp, gold in zip(responses, golds):
        s = regex_filter(STRICT, resp, 0)
        f = regex_filter(FLEX, resp, -1)
        cases.append(dict(response=resp, gold=gold, strict=s, flexible=f,
                          strict_ok=normalize(s) == normalize(gold), flexible_ok=normalize(f) == normalize(gold)))
    norm = ["1,234", "$5.", "#### 42", "a #### b #### 7.", "7.\n", "ABC.", "x.y", "..", "#### 1,000.50."]
    hs = [
        "  Removing ice from car: Then, the man writes over the snow covering the window of a car.  ",
        "[header] How to make a cake [title] Preheat the oven. [step] Mix   the flour.",
        "A [b] c [d [e] f] g",
        "unterminated [bracket here",
        "across [new\nline] lines",
        "three   spaces and two  spaces",
        "Ending with space [title]",
    ]
    cap = ["then, the man. IS HERE", "", "élan VITAL", "123 ABC", "ǆemal"]
    strip = ["  a b  ", "\t\n x\u00a0", "\u2003y\u2003", "\x1cz\x1f", "none"]
    out = dict(gsm8k=cases, normalize=[dict(s=s, out=normalize(s)) for s in norm],
               hellaswag=[dict(s=s, out=hellaswag_preprocess(s)) for s in hs],
               capitalize=[dict(s=s, out=s.capitalize()) for s in cap],
               strip=[dict(s=s, out=s.strip(), rstrip=s.rstrip()) for s in strip],
               python=sys.version.split()[0])
    json.dump(out, open(args.out, "w"), indent=1, ensure_ascii=False)


def cmd_loglik(args):
    import numpy as np
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import minicpm_ref as ref
    cfg, weights = ref.load_model(args.checkpoint)
    rng = random.Random(args.seed)
    vocab = json.load(open(os.path.join(args.checkpoint, "config.json")))["vocab_size"]
    requests = []
    # (context length, continuation lengths): single-token choices (MMLU letters), mixed lengths,
    # a long context, many choices.
    shapes = [(7, [1, 1, 1, 1]), (12, [3, 1, 5]), (30, [2, 7]), (1, [4, 4, 4, 4, 4]), (45, [1, 9, 2, 6]),
              (20, [12]), (9, [2, 2, 3])]
    import torch
    for ctx_len, cont_lens in shapes:
        ctx = [rng.randrange(vocab) for _ in range(ctx_len)]
        conts = [[rng.randrange(vocab) for _ in range(n)] for n in cont_lens]
        lls, greedy = [], []
        for cont in conts:
            full = ctx + cont
            with torch.no_grad():
                logits = ref.forward(cfg, weights, full[:-1], torch.float32).double()
            logp = torch.log_softmax(logits, dim=-1)
            rows = logp[len(ctx) - 1:]
            targets = torch.tensor(cont)
            lls.append(float(rows.gather(1, targets[:, None]).sum()))
            greedy.append(bool((rows.argmax(dim=-1) == targets).all()))
        requests.append(dict(context=ctx, continuations=conts, loglik=lls, is_greedy=greedy))
    # is_greedy true: continuations that follow the argmax chain (4 tokens, 1 token), next to a random one.
    ctx = [rng.randrange(vocab) for _ in range(10)]
    chain = []
    for _ in range(4):
        with torch.no_grad():
            logits = ref.forward(cfg, weights, ctx + chain, torch.float32)
        chain.append(int(logits[-1].argmax()))
    conts = [chain, chain[:1], [rng.randrange(vocab) for _ in range(3)]]
    lls, greedy = [], []
    for cont in conts:
        full = ctx + cont
        with torch.no_grad():
            logits = ref.forward(cfg, weights, full[:-1], torch.float32).double()
        rows = torch.log_softmax(logits, dim=-1)[len(ctx) - 1:]
        targets = torch.tensor(cont)
        lls.append(float(rows.gather(1, targets[:, None]).sum()))
        greedy.append(bool((rows.argmax(dim=-1) == targets).all()))
    requests.append(dict(context=ctx, continuations=conts, loglik=lls, is_greedy=greedy))
    out = dict(checkpoint=os.path.basename(os.path.normpath(args.checkpoint)),
               checkpoint_hash="%016x" % ref.checkpoint_hash(args.checkpoint)[0],
               reference="tools/reference/minicpm_ref.py forward, fp32, log_softmax in fp64", requests=requests)
    json.dump(out, open(args.out, "w"), indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("random"); p.add_argument("--out", required=True); p.set_defaults(fn=cmd_random)
    p = sub.add_parser("text"); p.add_argument("--out", required=True); p.set_defaults(fn=cmd_text)
    p = sub.add_parser("loglik"); p.add_argument("--out", required=True); p.add_argument("--checkpoint", required=True)
    p.add_argument("--seed", type=int, default=20261202); p.set_defaults(fn=cmd_loglik)
    args = ap.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
