#!/usr/bin/python3
"""Independent PyTorch reference for the trainer (src/train): loss, logits, gradients and AdamW
updates of a tiny MiniCPM4 model, written to the golden files of tests/data/train.

Written from docs/minicpm4-format.md §3 and ../shared/docs/training-recipe.md §1-2, NOT from the
C++ code (nothing is shared with it). Needs Debian's python3-torch (1.13) and numpy; run it with
/usr/bin/python3. Everything is computed in float64 with torch autograd.

Model (HF MiniCPMForCausalLM, eager attention):
  x = E[ids] * scale_emb
  per layer, c = scale_depth / sqrt(L):
    a = RMSNorm(x);  q, k, v = a Wq^T, a Wk^T, a Wv^T  (heads = contiguous column blocks)
    q, k = q*cos + rotate_half(q)*sin   (NeoX pairing (j, j+d/2); LongRoPE tables below)
    o = softmax(q k^T / sqrt(d) + causal mask) v   (query head h uses kv head h // (nh/nkv))
    x = x + c * (o Wo^T)
    b = RMSNorm(x);  x = x + c * ((silu(b Wg^T) * (b Wu^T)) Wd^T)
  logits = (RMSNorm(x) / (hidden / dim_model_base)) Wlm^T   (Wlm = E when tied)
  loss = sum(mask * CE(logits, targets)) / sum(mask)
RMSNorm(x) = x / sqrt(mean(x^2) + eps) * w. LongRoPE (HF MiniCPMLongRoPE): inv_freq = 1/theta^(2i/d),
the table is built for max_position_embeddings positions; ext = long_factor when that exceeds
original_max_position_embeddings, else short_factor; freqs = outer(t, 1/ext) * inv_freq;
cos/sin = cos/sin(cat(freqs, freqs)) * sqrt(1 + ln(max_pos/original)/ln(original)).

Optimizer (MiniCPM muP): torch.optim.AdamW (betas 0.9/0.95, eps 1e-8, decoupled weight decay
p *= 1 - lr_g*wd) with two parameter groups: hidden matrices (q,k,v,o,gate,up,down) at
lr / width_mult (width_mult = hidden / dim_model_base), everything else (embedding, lm_head, norms)
at lr; global-norm gradient clipping (torch.nn.utils.clip_grad_norm_) before every step.

Golden file format (one per case): tests/data/train/golden_<case>.safetensors, a safetensors file
(little-endian; u64 header length, JSON header, data) with
  metadata  "config": the config.json of the model (HF MiniCPM keys)
            "adamw": {"lr", "beta1", "beta2", "eps", "weight_decay", "grad_clip", "steps"}
            "loss": the loss of the initial weights, decimal, 17 significant digits
            "format": "mcpm-train-golden", "version": "1"
  tensors   "<hf name>"            F32  initial weights (the reference upcasts them exactly to f64)
            "input_ids"            I32  [B, T]
            "targets"              I32  [B, T]
            "mask"                 F32  [B, T]  (0 = ignored position)
            "logits"               F32  [B*T, V]   at the initial weights
            "grad.<hf name>"       F32  d loss / d weight at the initial weights
            "grad_norm"            F64  [steps]   global gradient norm before clipping, per step
            "after.<hf name>"      F32  weights after `steps` AdamW updates on the same batch
Regenerate (from the repository root): /usr/bin/python3 tools/reference/train_ref.py
(deterministic: torch.Generator seeds per case; rerunning gives the same files on the same torch).
"""
import argparse
import json
import math
import os
import struct

import numpy as np
import torch

torch.set_default_dtype(torch.float64)

CASES = {
    # GQA (4 q heads, 2 kv heads), tied embeddings, LongRoPE with the long factors in use.
    "tied_longrope": dict(vocab_size=61, hidden_size=32, intermediate_size=80, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                          max_position_embeddings=64, longrope_original=32, B=2, T=11, seed=11),
    # MQA (1 kv head), untied lm_head, plain RoPE, three layers.
    "untied_plain": dict(vocab_size=53, hidden_size=24, intermediate_size=56, num_hidden_layers=3,
                         num_attention_heads=3, num_key_value_heads=1, tie_word_embeddings=False,
                         max_position_embeddings=32, longrope_original=0, B=3, T=9, seed=23),
}
# eps 1e-6 (MiniCPM: 1e-8): Adam's m/sqrt(v) amplifies the relative float32-vs-float64 error of
# near-zero gradient elements into a whole lr-sized step; a larger eps keeps the comparison about the
# update rule itself. The C++ test reads every value from the file.
ADAMW = dict(lr=0.02, beta1=0.9, beta2=0.95, eps=1e-6, weight_decay=0.1, grad_clip=0.5, steps=3)


def make_config(c):
    d = c["hidden_size"] // c["num_attention_heads"]
    cfg = {
        "architectures": ["MiniCPMForCausalLM"], "model_type": "minicpm",
        "vocab_size": c["vocab_size"], "hidden_size": c["hidden_size"],
        "intermediate_size": c["intermediate_size"], "num_hidden_layers": c["num_hidden_layers"],
        "num_attention_heads": c["num_attention_heads"], "num_key_value_heads": c["num_key_value_heads"],
        "hidden_act": "silu", "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "max_position_embeddings": c["max_position_embeddings"], "scale_emb": 12, "scale_depth": 1.4,
        "dim_model_base": 8, "tie_word_embeddings": c["tie_word_embeddings"], "bos_token_id": 1,
        "eos_token_id": 2, "initializer_range": 0.1, "torch_dtype": "float32",
    }
    if c["longrope_original"]:
        half = d // 2
        long_f = [1.0 + 3.0 * i / max(half - 1, 1) for i in range(half)]
        short_f = [1.0 + 0.5 * i / max(half - 1, 1) for i in range(half)]
        cfg["rope_scaling"] = {"rope_type": "longrope", "long_factor": long_f, "short_factor": short_f,
                               "original_max_position_embeddings": c["longrope_original"]}
    return cfg


def param_names(cfg):
    names = ["model.embed_tokens.weight"]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        names += [p + "input_layernorm.weight", p + "self_attn.q_proj.weight", p + "self_attn.k_proj.weight",
                  p + "self_attn.v_proj.weight", p + "self_attn.o_proj.weight", p + "post_attention_layernorm.weight",
                  p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight", p + "mlp.down_proj.weight"]
    names.append("model.norm.weight")
    if not cfg["tie_word_embeddings"]:
        names.append("lm_head.weight")
    return names


def param_shape(cfg, name):
    H, F, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    d = H // cfg["num_attention_heads"]
    kv = cfg["num_key_value_heads"] * d
    if name.endswith("layernorm.weight") or name == "model.norm.weight":
        return (H,)
    table = {"embed_tokens": (V, H), "lm_head": (V, H), "q_proj": (H, H), "k_proj": (kv, H), "v_proj": (kv, H),
             "o_proj": (H, H), "gate_proj": (F, H), "up_proj": (F, H), "down_proj": (H, F)}
    for k, s in table.items():
        if k in name:
            return s
    raise ValueError(name)


def is_hidden_matrix(name):
    return any(k in name for k in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"))


def rope_tables(cfg, T):
    H, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    d = H // nh
    inv_freq = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    max_pos = cfg["max_position_embeddings"]
    n = max(max_pos, T)
    t = torch.arange(n, dtype=torch.float64)
    rs = cfg.get("rope_scaling")
    if rs:
        orig = rs["original_max_position_embeddings"]
        ext = torch.tensor(rs["long_factor"] if n > orig else rs["short_factor"], dtype=torch.float64)
        mscale = math.sqrt(1 + math.log(max_pos / orig) / math.log(orig))
        freqs = torch.outer(t, 1.0 / ext) * inv_freq
    else:
        mscale = 1.0
        freqs = torch.outer(t, inv_freq)
    emb = torch.cat([freqs, freqs], dim=-1)
    return (emb.cos() * mscale)[:T], (emb.sin() * mscale)[:T]


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


def rmsnorm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def forward(cfg, P, ids):
    B, T = ids.shape
    H, nh, nkv, L = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["num_hidden_layers"]
    d = H // nh
    eps = cfg["rms_norm_eps"]
    c = cfg["scale_depth"] / math.sqrt(L)
    cos, sin = rope_tables(cfg, T)
    x = P["model.embed_tokens.weight"][ids] * cfg["scale_emb"]
    mask = torch.full((T, T), float("-inf")).triu(1)
    for i in range(L):
        p = f"model.layers.{i}."
        a = rmsnorm(x, P[p + "input_layernorm.weight"], eps)
        q = (a @ P[p + "self_attn.q_proj.weight"].T).view(B, T, nh, d).transpose(1, 2)
        k = (a @ P[p + "self_attn.k_proj.weight"].T).view(B, T, nkv, d).transpose(1, 2)
        v = (a @ P[p + "self_attn.v_proj.weight"].T).view(B, T, nkv, d).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(nh // nkv, dim=1)
        v = v.repeat_interleave(nh // nkv, dim=1)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d) + mask, dim=-1)
        o = (att @ v).transpose(1, 2).reshape(B, T, H)
        x = x + c * (o @ P[p + "self_attn.o_proj.weight"].T)
        b = rmsnorm(x, P[p + "post_attention_layernorm.weight"], eps)
        g = b @ P[p + "mlp.gate_proj.weight"].T
        u = b @ P[p + "mlp.up_proj.weight"].T
        x = x + c * ((torch.nn.functional.silu(g) * u) @ P[p + "mlp.down_proj.weight"].T)
    y = rmsnorm(x, P["model.norm.weight"], eps) / (H / cfg["dim_model_base"])
    W = P["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else P["lm_head.weight"]
    return (y @ W.T).reshape(B * T, -1)


def masked_loss(logits, targets, mask):
    ce = torch.nn.functional.cross_entropy(logits, targets.reshape(-1), reduction="none")
    m = mask.reshape(-1)
    return (ce * m).sum() / m.sum()


def make_case(name, c):
    cfg = make_config(c)
    gen = torch.Generator().manual_seed(c["seed"])
    w = cfg["hidden_size"] / cfg["dim_model_base"]
    init = {}
    for n in param_names(cfg):
        shape = param_shape(cfg, n)
        if len(shape) == 1:
            v = 1.0 + 0.2 * (torch.rand(shape, generator=gen) - 0.5)
        elif is_hidden_matrix(n):
            v = torch.randn(shape, generator=gen) * (0.1 / math.sqrt(w)) * 3.0  # larger than muP init: richer grads
        else:
            v = torch.randn(shape, generator=gen) * 0.1
        init[n] = v.to(torch.float32).to(torch.float64)  # the golden stores f32; compute from exactly those
    B, T, V = c["B"], c["T"], cfg["vocab_size"]
    ids = torch.randint(0, V, (B, T), generator=gen)
    targets = torch.randint(0, V, (B, T), generator=gen)
    mask = (torch.rand((B, T), generator=gen) > 0.3).to(torch.float64)
    mask[0, 0] = 0.0
    mask[-1, -1] = 1.0

    P = {n: v.clone().requires_grad_(True) for n, v in init.items()}
    logits = forward(cfg, P, ids)
    loss = masked_loss(logits, targets, mask)
    loss.backward()
    grads = {n: P[n].grad.detach().clone() for n in P}

    # AdamW with the muP groups, clipping, several steps on the same batch.
    P2 = {n: v.clone().requires_grad_(True) for n, v in init.items()}
    hidden = [P2[n] for n in P2 if is_hidden_matrix(n)]
    base = [P2[n] for n in P2 if not is_hidden_matrix(n)]
    opt = torch.optim.AdamW([{"params": hidden, "lr": ADAMW["lr"] / w}, {"params": base, "lr": ADAMW["lr"]}],
                            betas=(ADAMW["beta1"], ADAMW["beta2"]), eps=ADAMW["eps"],
                            weight_decay=ADAMW["weight_decay"])
    norms = []
    for _ in range(ADAMW["steps"]):
        opt.zero_grad()
        masked_loss(forward(cfg, P2, ids), targets, mask).backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(list(P2.values()), ADAMW["grad_clip"])))
        opt.step()

    tensors = {}
    for n in init:
        tensors[n] = init[n].numpy().astype(np.float32)
    tensors["input_ids"] = ids.numpy().astype(np.int32)
    tensors["targets"] = targets.numpy().astype(np.int32)
    tensors["mask"] = mask.numpy().astype(np.float32)
    tensors["logits"] = logits.detach().numpy().astype(np.float32)
    for n in init:
        tensors["grad." + n] = grads[n].numpy().astype(np.float32)
    tensors["grad_norm"] = np.array(norms, dtype=np.float64)
    for n in init:
        tensors["after." + n] = P2[n].detach().numpy().astype(np.float32)
    meta = {"format": "mcpm-train-golden", "version": "1", "config": json.dumps(cfg, sort_keys=True),
            "adamw": json.dumps(ADAMW, sort_keys=True), "loss": repr(float(loss))}
    return tensors, meta, float(loss), norms


def write_safetensors(path, tensors, meta):
    dt = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64", np.dtype(np.int32): "I32"}
    header, blobs, off = {"__metadata__": meta}, [], 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        b = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dt[arr.dtype], "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "train"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name, c in CASES.items():
        tensors, meta, loss, norms = make_case(name, c)
        path = os.path.join(args.out, f"golden_{name}.safetensors")
        write_safetensors(path, tensors, meta)
        print(f"{path}: loss {loss:.10f}, grad norms {', '.join(f'{n:.6f}' for n in norms)}, "
              f"{os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
