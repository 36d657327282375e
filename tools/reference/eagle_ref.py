#!/usr/bin/python3
"""Independent reference for an EAGLE draft head on a MiniCPM4 target (PyTorch, fp32), and the golden
file of tests/unit/test_eagle.cpp.

Written from docs/speculative.md and ../shared/docs/minicpm4-format.md §5 (CPM.cu's MiniCPM4 EAGLE),
not from the C++ engine. For target tokens x_0..x_{N-1} and a root token r (= x_0 in the golden):

  h_t  = target final-norm hidden state at position t                       [N, H]
  e_t  = scale_emb * E[x_{t+1}]   (x_N := r; E = the target's embedding)     [N, H]
  z_t  = fc([RMSNorm(e_t; input_norm1) ; RMSNorm(h_t; input_norm2)]) (+ fc.bias)
  z'   = draft decoder layers over z (positions 0..N-1, causal), residual multiplier
         scale_depth / sqrt(mup_denominator or target layers + 1); no final norm
  logits = z' W_fr^T  with W_fr = target lm_head rows of the FR vocabulary (no 1/(H/base))
           or, without an FR vocabulary, (z' / (H/base)) Wlm^T (the target's head)

Usage: eagle_ref.py golden --target DIR --draft DIR --fr FILE.txt --tokens "1 2 3" --out FILE
The golden uses the MCPMGOLD layout of minicpm_ref.py (T = N draft rows, V = FR size, tokens = x,
hash = checkpoint_hash(target) ^ (checkpoint_hash(draft) * 31 mod 2^64)).
"""
import argparse
import json
import math
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import minicpm_ref as R  # noqa: E402


def draft_logits(target_dir, draft_dir, tokens, root, fr):
    tcfg, tw = R.load_model(target_dir)
    with open(os.path.join(draft_dir, "config.json")) as f:
        draw = json.load(f)
    dcfg = R.Config(draw)
    dw = {k: v[0].to(torch.float32) for k, v in R.read_checkpoint_weights(draft_dir).items()}
    TW = {k: v[0].to(torch.float32) for k, v in tw.items()}
    h = R.forward(tcfg, tw, tokens, hidden=True)
    N = len(tokens)
    nxt = torch.tensor(tokens[1:] + [root], dtype=torch.long)
    e = TW["model.embed_tokens.weight"][nxt] * tcfg.scale_emb
    x = torch.cat((R.rmsnorm(dcfg, e, dw["input_norm1.weight"]), R.rmsnorm(dcfg, h, dw["input_norm2.weight"])), dim=-1)
    z = x @ dw["fc.weight"].T
    if "fc.bias" in dw:
        z = z + dw["fc.bias"]
    cos, sin = R.rope_tables(dcfg, N, torch.float32)
    mask = torch.triu(torch.ones(N, N, dtype=torch.bool), diagonal=1)
    denom = draw.get("mup_denominator") or (tcfg.L + 1)
    c = dcfg.scale_depth / math.sqrt(denom)
    prefix = "model.layers." if "model.layers.0.input_layernorm.weight" in dw else "layers."
    for l in range(dcfg.L):
        z = R.decoder_layer(dcfg, dw, f"{prefix}{l}.", z, cos, sin, mask, c)
    head = TW["model.embed_tokens.weight"] if tcfg.tied else TW["lm_head.weight"]
    if fr is None:
        return (z / (tcfg.H / tcfg.dim_model_base)) @ head.T
    return z @ head[torch.tensor(fr, dtype=torch.long)].T


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("golden")
    g.add_argument("--target", required=True)
    g.add_argument("--draft", required=True)
    g.add_argument("--fr", required=True)
    g.add_argument("--tokens", required=True)
    g.add_argument("--out", required=True)
    a = ap.parse_args()
    tokens = [int(t) for t in a.tokens.split()]
    with open(a.fr) as f:
        fr = [int(t) for t in f.read().split()]
    logits = draft_logits(a.target, a.draft, tokens, tokens[0], fr)
    h = (R.checkpoint_hash(a.target)[0] ^ (R.checkpoint_hash(a.draft)[0] * 31)) & 0xFFFFFFFFFFFFFFFF
    R.write_golden(a.out, "eagle_fr", "fp32", h, tokens, logits)
    print(f"wrote {a.out}: {len(tokens)} rows x {len(fr)} logits, max|logit| {float(logits.abs().max()):.3f}")


if __name__ == "__main__":
    main()
