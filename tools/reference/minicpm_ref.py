#!/usr/bin/python3
"""Independent MiniCPM4 reference forward pass (PyTorch) and the golden-logit files of tests/golden.

Written from docs/minicpm4-format.md (§1-§3) and the official Hugging Face `modeling_minicpm.py` /
`configuration_minicpm.py` semantics, NOT from the C++ engine. Needs only Python 3, numpy and
torch (Debian's python3-torch; run it with /usr/bin/python3). No transformers, no safetensors
package: safetensors files (single or sharded with model.safetensors.index.json; BF16, F16, F32)
are parsed here with json + numpy.

What the reference computes
---------------------------
`forward(cfg, weights, tokens)` = logits [T, V] of one batch-1 forward over the whole sequence at
positions 0..T-1, i.e. HF `MiniCPMForCausalLM(input_ids).logits` with the **eager** attention
implementation, run in float32 with the weights upcast exactly from the checkpoint dtype ("HF eager
in fp32"). Every operation follows the HF module in the same order:

  x      = E[ids] * scale_emb
  per layer (c = scale_depth / sqrt(num_hidden_layers)):
    a    = RMSNorm(x)              var = mean(x^2) in fp32; x * rsqrt(var + rms_norm_eps) * w
    q,k,v= a Wq^T, a Wk^T, a Wv^T  heads are contiguous column blocks of head_dim
    q,k  = q*cos + rotate_half(q)*sin   (NeoX pairing (j, j+d/2); cos/sin tables below)
    attn = softmax(q k^T / sqrt(head_dim) + causal mask) v, kv head of query head h = h // (nh/nkv)
    x    = x + (attn Wo^T) * c
    b    = RMSNorm(x);  x = x + (silu(b Wg^T) * (b Wu^T)) Wd^T * c
  y      = RMSNorm_final(x);  logits = (y / (hidden_size / dim_model_base)) Wlm^T
           (Wlm = embed_tokens when tie_word_embeddings, the HF default when the key is absent)

RoPE tables (HF MiniCPMRotaryEmbedding / MiniCPMLongRoPE): inv_freq = 1 / theta^(arange(0,d,2)/d)
(fp32); the table is built for max_position_embeddings positions and rebuilt for T when T is
larger. LongRoPE: ext = long_factor if table_len > original_max_position_embeddings else
short_factor; freqs = outer(t, 1/ext) * inv_freq; cos/sin = cos/sin(cat(freqs, freqs)) * mscale with
mscale = sqrt(1 + ln(max_position_embeddings/original)/ln(original)) (no guard; 1.0 when equal).

config.json keys that are absent take the HF MiniCPMConfig defaults (vocab 32000, hidden 4096,
intermediate 11008, layers 32, heads 32, kv heads = heads, max_position 2048, rms_norm_eps 1e-6,
rope_theta 10000, rope_scaling None, tie_word_embeddings True, scale_emb 1, scale_depth 1,
dim_model_base 1). `head_dim`: the official MiniCPM modeling always uses hidden/heads (and raises
when heads*head_dim != hidden); this reference accepts an explicit `head_dim` the way newer HF
models (Llama, Qwen) do: q_proj is [heads*head_dim, hidden], o_proj [hidden, heads*head_dim].

Other modes: `--dtype float64` (everything in fp64, including the RoPE tables: the "true" value,
used to see how much of an engine-vs-golden difference is the golden's own fp32 rounding) and
`--hf-bf16` (reproduces the bf16 rounding points of HF eager in bfloat16, docs §3.1/§3.2: every
op output rounded to bf16, fp32 rsqrt and softmax and RoPE, bf16 logits).

Golden files (tests/data/golden)
--------------------------------
The cases (shape, dtype, shards, RoPE variant, token sequence, tolerances) are defined in CASES
below and written to tests/data/golden/manifest.json by `minicpm_ref.py manifest`. The checkpoints
are tiny random-weight folders written by the C++ writer (`mcpm::write_random_checkpoint`, which is
bit-deterministic) through the tool `mcpm-golden-checkpoints` (tests/golden); they are not committed
— the C++ test writes them again into a temp dir, checks their hash against the golden, and loads
them with mcpm::Model. For each case this script reads the checkpoint folder, runs the fp32
reference on the case's tokens and writes `<case>.bin`:

  offset  size     field (all little-endian)
  0       8        magic "MCPMGOLD"
  8       u32      format version = 1
  12      u32      kind: 0 = fp32 reference (HF eager fp32), 1 = hf-bf16, 2 = fp64
  16      u32      T, number of tokens
  20      u32      V, vocab size
  24      u64      checkpoint hash: XXH64 (seed 0) of the concatenated bytes of every file in the
                   checkpoint folder whose name ends in ".json" or ".safetensors", in byte-wise
                   sorted file-name order (config.json, generation_config.json, the shards, the index)
  32      char[32] case name, NUL padded
  64      i32[T]   the token ids
  ...     f32[T*V] logits, row t = position t
  end-8   u64      XXH64 (seed 0) of all the bytes before it (file integrity)

A hash mismatch in the test means the writer (or its options) changed: regenerate the goldens. A
logits mismatch with a matching hash means the forward pass is wrong.

Tolerances (TOLERANCES below; relative to s = max(1, max|golden|)): exact mode 1e-5 (observed
engine-vs-golden <= 2.6e-6; golden-vs-fp64 <= 3.8e-6, engine-vs-fp64 <= 3.3e-6), fast mode 4e-2 with
argmax agreement >= 0.9 (HF bf16 itself is up to 3.3e-2 from fp64; bf16 activations + KV emulated
<= 2.0e-2), consistency between call patterns 5e-6. Details: tests/data/golden/README.md.

Regenerate everything (manifest, checkpoints, goldens) from the repository root with

    tools/reference/make_goldens.sh            # BUILD=build-golden by default

which runs:
    /usr/bin/python3 tools/reference/minicpm_ref.py manifest --out tests/data/golden/manifest.json
    cmake --build $BUILD --target mcpm-golden-checkpoints
    $BUILD/bin/mcpm-golden-checkpoints --manifest tests/data/golden/manifest.json --out $WORK
    /usr/bin/python3 tools/reference/minicpm_ref.py goldens --manifest tests/data/golden/manifest.json \\
        --checkpoints $WORK --out-dir tests/data/golden

Other commands: `logits --model DIR --tokens 1,2,3 [--hf-bf16|--dtype float64] [--out F.bin]`,
`verify --manifest M --checkpoints DIR` (recompute and compare with the committed goldens; also
prints the fp64-vs-fp32 and hf-bf16-vs-fp32 differences used to choose the tolerances),
`compare A.bin B.bin`, `selftest` (XXH64 test vectors).
"""

import argparse
import json
import math
import os
import re
import struct
import sys

import numpy as np
import torch

# ----------------------------------------------------------------------------------------------
# XXH64 (pure Python; the C++ side uses libxxhash). Spec: github.com/Cyan4973/xxHash, doc/xxhash_spec.md

_P1 = 11400714785074694791
_P2 = 14029467366897019727
_P3 = 1609587929392839161
_P4 = 9650029242287828579
_P5 = 2870177450012600261
_M = (1 << 64) - 1


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & _M


def _round(acc, lane):
    acc = (acc + lane * _P2) & _M
    return (_rotl(acc, 31) * _P1) & _M


def _merge(acc, v):
    acc ^= _round(0, v)
    return (acc * _P1 + _P4) & _M


def xxh64(data, seed=0):
    data = bytes(data)
    n = len(data)
    i = 0
    if n >= 32:
        v1, v2, v3, v4 = (seed + _P1 + _P2) & _M, (seed + _P2) & _M, seed & _M, (seed - _P1) & _M
        limit = n - n % 32
        for a, b, c, d in struct.iter_unpack("<4Q", data[:limit]):
            v1 = _rotl((v1 + a * _P2) & _M, 31) * _P1 & _M
            v2 = _rotl((v2 + b * _P2) & _M, 31) * _P1 & _M
            v3 = _rotl((v3 + c * _P2) & _M, 31) * _P1 & _M
            v4 = _rotl((v4 + d * _P2) & _M, 31) * _P1 & _M
        i = limit
        h = (_rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)) & _M
        for v in (v1, v2, v3, v4):
            h = _merge(h, v)
    else:
        h = (seed + _P5) & _M
    h = (h + n) & _M
    while i + 8 <= n:
        h ^= _round(0, struct.unpack_from("<Q", data, i)[0])
        h = (_rotl(h, 27) * _P1 + _P4) & _M
        i += 8
    if i + 4 <= n:
        h ^= (struct.unpack_from("<I", data, i)[0] * _P1) & _M
        h = (_rotl(h, 23) * _P2 + _P3) & _M
        i += 4
    while i < n:
        h ^= (data[i] * _P5) & _M
        h = (_rotl(h, 11) * _P1) & _M
        i += 1
    h ^= h >> 33
    h = (h * _P2) & _M
    h ^= h >> 29
    h = (h * _P3) & _M
    h ^= h >> 32
    return h


def checkpoint_hash(folder):
    """XXH64 of the bytes of every *.json and *.safetensors file, in sorted file-name order."""
    names = sorted((f for f in os.listdir(folder) if f.endswith(".json") or f.endswith(".safetensors")),
                   key=lambda s: s.encode())
    blob = bytearray()
    for f in names:
        with open(os.path.join(folder, f), "rb") as fh:
            blob += fh.read()
    return xxh64(blob), names


# ----------------------------------------------------------------------------------------------
# safetensors

_DTYPES = {"BF16": 2, "F16": 2, "F32": 4}


def read_safetensors(path):
    """{name: (float32 torch tensor, dtype string)}; the float32 values are exact upcasts."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (hlen,) = struct.unpack_from("<Q", raw, 0)
    if 8 + hlen > len(raw):
        raise ValueError(f"{path}: header length {hlen} past the end of the file")
    header = json.loads(raw[8:8 + hlen].decode("utf-8"))
    base = 8 + hlen
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt, shape, (b, e) = info["dtype"], info["shape"], info["data_offsets"]
        if dt not in _DTYPES:
            raise ValueError(f"{path}: tensor {name}: dtype {dt} not supported (BF16, F16, F32)")
        numel = int(np.prod(shape)) if shape else 1
        if e - b != numel * _DTYPES[dt] or base + e > len(raw) or b < 0:
            raise ValueError(f"{path}: tensor {name}: bad data_offsets {b},{e} for shape {shape} {dt}")
        buf = raw[base + b:base + e]
        if dt == "BF16":
            arr = (np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        elif dt == "F16":
            arr = np.frombuffer(buf, dtype="<f2").astype(np.float32)
        else:
            arr = np.frombuffer(buf, dtype="<f4").astype(np.float32)
        out[name] = (torch.from_numpy(arr.reshape(shape).copy()), dt)
    return out


def read_checkpoint_weights(folder):
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            weight_map = json.load(f)["weight_map"]
        files = sorted(set(weight_map.values()))
    else:
        weight_map, files = None, ["model.safetensors"]
    weights = {}
    for fname in files:
        for name, t in read_safetensors(os.path.join(folder, fname)).items():
            if name in weights:
                raise ValueError(f"{folder}: tensor {name} appears in more than one file")
            if weight_map is not None and weight_map.get(name) != fname:
                raise ValueError(f"{folder}: tensor {name} is in {fname} but the index says {weight_map.get(name)}")
            weights[name] = t
    if weight_map is not None:
        missing = set(weight_map) - set(weights)
        if missing:
            raise ValueError(f"{folder}: tensors listed in the index but absent: {sorted(missing)[:3]}")
    return weights


# ----------------------------------------------------------------------------------------------
# config (HF MiniCPMConfig defaults for absent keys)

_CONFIG_DEFAULTS = dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                        num_attention_heads=32, num_key_value_heads=None, hidden_act="silu",
                        max_position_embeddings=2048, rms_norm_eps=1e-6, tie_word_embeddings=True,
                        rope_theta=10000.0, rope_scaling=None, attention_bias=False, scale_emb=1,
                        dim_model_base=1, scale_depth=1, pretraining_tp=1)


class Config:
    def __init__(self, raw):
        c = dict(_CONFIG_DEFAULTS)
        c.update({k: v for k, v in raw.items()})
        if c["num_key_value_heads"] is None:
            c["num_key_value_heads"] = c["num_attention_heads"]
        if c["hidden_act"] != "silu":
            raise ValueError(f"hidden_act {c['hidden_act']} not supported")
        if c["attention_bias"]:
            raise ValueError("attention_bias not supported")
        if c.get("pretraining_tp", 1) != 1:
            raise ValueError("pretraining_tp > 1 not supported")  # numerically the same, but not modelled
        self.raw = c
        self.V = int(c["vocab_size"])
        self.H = int(c["hidden_size"])
        self.F = int(c["intermediate_size"])
        self.L = int(c["num_hidden_layers"])
        self.nh = int(c["num_attention_heads"])
        self.nkv = int(c["num_key_value_heads"])
        self.d = int(c["head_dim"]) if c.get("head_dim") is not None else self.H // self.nh
        if "head_dim" not in raw and self.d * self.nh != self.H:
            raise ValueError("hidden_size must be divisible by num_attention_heads")
        self.max_pos = int(c["max_position_embeddings"])
        self.eps = float(c["rms_norm_eps"])
        self.theta = c["rope_theta"]
        self.rope_scaling = c["rope_scaling"]
        if self.rope_scaling is not None:
            rt = self.rope_scaling.get("rope_type", self.rope_scaling.get("type"))
            if rt != "longrope":
                raise ValueError(f"rope_scaling type {rt} not supported (longrope only)")
        self.tied = bool(c["tie_word_embeddings"])
        self.scale_emb = c["scale_emb"]
        self.scale_depth = c["scale_depth"]
        self.dim_model_base = c["dim_model_base"]


def load_model(folder):
    with open(os.path.join(folder, "config.json")) as f:
        cfg = Config(json.load(f))
    weights = read_checkpoint_weights(folder)
    return cfg, weights


# ----------------------------------------------------------------------------------------------
# forward pass


def rope_tables(cfg, T, dtype):
    """cos, sin [T, d] for positions 0..T-1, as HF builds and indexes them."""
    d = cfg.d
    inv_freq = 1.0 / (cfg.theta ** (torch.arange(0, d, 2, dtype=torch.int64).to(dtype) / d))
    n = max(cfg.max_pos, T)  # built for max_position_embeddings; rebuilt for seq_len when longer
    t = torch.arange(n, dtype=dtype)
    mscale = 1.0
    if cfg.rope_scaling is None:
        freqs = torch.outer(t, inv_freq)
    else:
        orig = cfg.rope_scaling["original_max_position_embeddings"]
        mscale = math.sqrt(1 + math.log(cfg.max_pos / orig) / math.log(orig))
        factors = cfg.rope_scaling["long_factor"] if n > orig else cfg.rope_scaling["short_factor"]
        ext = torch.tensor(factors, dtype=torch.float32).to(dtype)
        if ext.numel() != d // 2:
            raise ValueError(f"rope factors have {ext.numel()} values, expected head_dim/2 = {d // 2}")
        freqs = torch.mul(torch.outer(t, 1.0 / ext), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    if cfg.rope_scaling is not None:
        cos, sin = cos * mscale, sin * mscale
    return cos[:T], sin[:T]


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def _weights(cfg, weights, cast):
    W = {k: cast(v[0]) for k, v in weights.items()}
    head = W["model.embed_tokens.weight"] if cfg.tied else W["lm_head.weight"]
    return W, head


def rmsnorm(cfg, x, w):
    var = x.pow(2).mean(-1, keepdim=True)
    return x * torch.rsqrt(var + cfg.eps) * w


def decoder_layer(cfg, W, p, x, cos, sin, mask, c):
    """One MiniCPM decoder layer on x [T, H] (tensor names under prefix p), residual multiplier c."""
    T, d, nh, nkv = x.shape[0], cfg.d, cfg.nh, cfg.nkv
    a = rmsnorm(cfg, x, W[p + "input_layernorm.weight"])
    q = (a @ W[p + "self_attn.q_proj.weight"].T).view(T, nh, d).transpose(0, 1)
    k = (a @ W[p + "self_attn.k_proj.weight"].T).view(T, nkv, d).transpose(0, 1)
    v = (a @ W[p + "self_attn.v_proj.weight"].T).view(T, nkv, d).transpose(0, 1)
    q = q * cos + rotate_half(q) * sin
    k = k * cos + rotate_half(k) * sin
    k = torch.repeat_interleave(k, nh // nkv, dim=0)
    v = torch.repeat_interleave(v, nh // nkv, dim=0)
    s = (q @ k.transpose(1, 2)) / math.sqrt(d)
    s = s.masked_fill(mask, float("-inf"))
    o = torch.softmax(s, dim=-1) @ v
    o = o.transpose(0, 1).reshape(T, nh * d) @ W[p + "self_attn.o_proj.weight"].T
    x = x + o * c
    b = rmsnorm(cfg, x, W[p + "post_attention_layernorm.weight"])
    g = b @ W[p + "mlp.gate_proj.weight"].T
    u = b @ W[p + "mlp.up_proj.weight"].T
    m = (torch.nn.functional.silu(g) * u) @ W[p + "mlp.down_proj.weight"].T
    return x + m * c


def forward(cfg, weights, tokens, dtype=torch.float32, hidden=False):
    """Logits [T, V] (float32 or float64) for tokens at positions 0..T-1; all math in `dtype`.
    hidden=True returns the final-norm hidden states [T, H] instead (what an EAGLE draft reads)."""
    W, Wlm = _weights(cfg, weights, lambda t: t.to(dtype))
    T = len(tokens)
    ids = torch.tensor(tokens, dtype=torch.long)
    if int(ids.min()) < 0 or int(ids.max()) >= cfg.V:
        raise ValueError("token id outside the vocabulary")
    cos, sin = rope_tables(cfg, T, dtype)
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    c = cfg.scale_depth / math.sqrt(cfg.L)
    x = W["model.embed_tokens.weight"][ids] * cfg.scale_emb
    for l in range(cfg.L):
        x = decoder_layer(cfg, W, f"model.layers.{l}.", x, cos, sin, mask, c)
    y = rmsnorm(cfg, x, W["model.norm.weight"])
    if hidden:
        return y
    return (y / (cfg.H / cfg.dim_model_base)) @ Wlm.T


def forward_hf_bf16(cfg, weights, tokens):
    """HF eager in bfloat16 (weights cast to bf16, as from_pretrained(torch_dtype=bfloat16) does)."""
    bf = torch.bfloat16
    W, Wlm = _weights(cfg, weights, lambda t: t.to(bf))
    T, d, nh, nkv = len(tokens), cfg.d, cfg.nh, cfg.nkv
    ids = torch.tensor(tokens, dtype=torch.long)
    cos, sin = rope_tables(cfg, T, torch.float32)  # eager asks with an fp32 tensor: fp32 tables
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    c = cfg.scale_depth / math.sqrt(cfg.L)
    lin = torch.nn.functional.linear

    def rmsnorm(x, w):
        var = x.to(torch.float32).pow(2).mean(-1, keepdim=True)
        return (x * torch.rsqrt(var + cfg.eps)).to(bf) * w

    def rope(x):
        xf = x.to(torch.float32)
        return (xf * cos + rotate_half(xf) * sin).to(bf)

    x = W["model.embed_tokens.weight"][ids] * cfg.scale_emb
    for l in range(cfg.L):
        p = f"model.layers.{l}."
        a = rmsnorm(x, W[p + "input_layernorm.weight"])
        q = lin(a, W[p + "self_attn.q_proj.weight"]).view(T, nh, d).transpose(0, 1)
        k = lin(a, W[p + "self_attn.k_proj.weight"]).view(T, nkv, d).transpose(0, 1)
        v = lin(a, W[p + "self_attn.v_proj.weight"]).view(T, nkv, d).transpose(0, 1)
        q, k = rope(q), rope(k)
        k = torch.repeat_interleave(k, nh // nkv, dim=0)
        v = torch.repeat_interleave(v, nh // nkv, dim=0)
        s = torch.matmul(q, k.transpose(1, 2)) / math.sqrt(d)
        s = s.masked_fill(mask, float("-inf"))
        pr = torch.softmax(s, dim=-1, dtype=torch.float32).to(bf)
        o = torch.matmul(pr, v).transpose(0, 1).reshape(T, nh * d)
        o = lin(o, W[p + "self_attn.o_proj.weight"])
        x = x + o * c
        b = rmsnorm(x, W[p + "post_attention_layernorm.weight"])
        m = lin(torch.nn.functional.silu(lin(b, W[p + "mlp.gate_proj.weight"])) * lin(b, W[p + "mlp.up_proj.weight"]),
                W[p + "mlp.down_proj.weight"])
        x = x + m * c
    y = rmsnorm(x, W["model.norm.weight"])
    return lin(y / (cfg.H / cfg.dim_model_base), Wlm).float()


def compute_logits(folder, tokens, kind="fp32"):
    cfg, weights = load_model(folder)
    with torch.no_grad():
        if kind == "hf-bf16":
            return forward_hf_bf16(cfg, weights, tokens).float().numpy()
        if kind == "fp64":
            return forward(cfg, weights, tokens, torch.float64).numpy()
        return forward(cfg, weights, tokens, torch.float32).numpy()


# ----------------------------------------------------------------------------------------------
# golden files

MAGIC = b"MCPMGOLD"
VERSION = 1
KINDS = {"fp32": 0, "hf-bf16": 1, "fp64": 2}


def write_golden(path, name, kind, ckpt_hash, tokens, logits):
    T, V = logits.shape
    assert len(tokens) == T
    nb = name.encode()
    if len(nb) >= 32:
        raise ValueError(f"case name {name} too long (31 bytes max)")
    body = bytearray()
    body += MAGIC + struct.pack("<IIIIQ", VERSION, KINDS[kind], T, V, ckpt_hash) + nb.ljust(32, b"\0")
    body += np.asarray(tokens, dtype="<i4").tobytes()
    body += np.asarray(logits, dtype="<f4").tobytes()
    body += struct.pack("<Q", xxh64(body))
    with open(path + ".tmp", "wb") as f:
        f.write(body)
    os.replace(path + ".tmp", path)


def read_golden(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:8] != MAGIC:
        raise ValueError(f"{path}: not a golden file (bad magic)")
    version, kind, T, V, h = struct.unpack_from("<IIIIQ", raw, 8)
    if version != VERSION:
        raise ValueError(f"{path}: version {version}, expected {VERSION}")
    if len(raw) != 64 + 4 * T + 4 * T * V + 8:
        raise ValueError(f"{path}: size {len(raw)} does not match T={T} V={V}")
    (check,) = struct.unpack_from("<Q", raw, len(raw) - 8)
    if check != xxh64(raw[:-8]):
        raise ValueError(f"{path}: checksum mismatch (corrupt file)")
    name = raw[32:64].rstrip(b"\0").decode()
    tokens = np.frombuffer(raw, dtype="<i4", count=T, offset=64).tolist()
    logits = np.frombuffer(raw, dtype="<f4", count=T * V, offset=64 + 4 * T).reshape(T, V)
    kind_name = {v: k for k, v in KINDS.items()}[kind]
    return dict(name=name, kind=kind_name, hash=h, tokens=tokens, logits=logits)


# ----------------------------------------------------------------------------------------------
# the golden cases (source of truth for tests/data/golden/manifest.json)

def _splitmix_tokens(seed, n, vocab):
    s, out = seed & _M, []
    for _ in range(n):
        s = (s + 0x9E3779B97F4A7C15) & _M
        z = s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M
        out.append(int((z ^ (z >> 31)) % vocab))
    return out


# writer defaults: mcpm::make_spec + RandomCheckpointOptions defaults, LongRoPE ramps 1->8 (short)
# and 1->40 (long) as tools/random_checkpoint.cpp uses.
WRITER_DEFAULTS = dict(head_dim=0, tied=True, lm_head_when_tied=False, rope="longrope", short_top=8.0,
                       long_top=40.0, max_position=32768, original_max_position=0, rms_eps=1e-5,
                       rope_theta=10000.0, scale_emb=12.0, scale_depth=1.4, dim_model_base=256.0,
                       dtype="bf16", shards=1, init_std=0.1, norm_jitter=0.1)

CASES = [
    # name, n_tokens, load options, writer options (+ what the case is for)
    dict(name="mha_hd32_short_tied", n_tokens=57, n_ctx=0,
         writer=dict(hidden=128, layers=2, heads=4, kv_heads=4, ffn=352, vocab=321, seed=101),
         what="GQA 1:1, head_dim 32, tied, LongRoPE max_pos == original (short factors), odd ffn/vocab"),
    dict(name="gqa4_hd64_long_untied", n_tokens=64, n_ctx=0,
         writer=dict(hidden=256, layers=2, heads=4, kv_heads=1, ffn=256, vocab=300, seed=102, tied=False,
                     max_position=65536, original_max_position=32768),
         what="GQA 4:1, head_dim 64, untied, LongRoPE max_pos = 2*original (long factors, mscale 1.0328)"),
    dict(name="gqa8_hd128_headdim", n_tokens=45, n_ctx=0,
         writer=dict(hidden=128, layers=2, heads=8, kv_heads=1, head_dim=128, ffn=256, vocab=256, seed=103),
         what="GQA 8:1, explicit head_dim 128 (heads*head_dim = 1024 != hidden 128), tied, short factors"),
    dict(name="f16_gqa2_long_mscale", n_tokens=70, n_ctx=96,
         writer=dict(hidden=128, layers=2, heads=4, kv_heads=2, ffn=352, vocab=321, seed=104, tied=False,
                     dtype="f16", max_position=96, original_max_position=48),
         what="f16 weights, GQA 2:1, untied, long factors with a large mscale (orig 48, max 96 -> 1.0858), "
              "sequence longer than original"),
    dict(name="f32_hd32_plain_rope_mup", n_tokens=50, n_ctx=0,
         writer=dict(hidden=192, layers=2, heads=4, kv_heads=1, head_dim=32, ffn=200, vocab=257, seed=105,
                     dtype="f32", tied=False, rope="none", rms_eps=1e-6, rope_theta=50000.0, scale_emb=10.0,
                     scale_depth=1.2, dim_model_base=64.0),
         what="f32 weights, untied, explicit head_dim 32 (q dim 128 < hidden 192), no rope_scaling (plain RoPE), "
              "theta 5e4, eps 1e-6, other muP numbers (logit divisor 3, not a power of two)"),
    dict(name="sharded3_untied_3layers", n_tokens=61, n_ctx=0,
         writer=dict(hidden=128, layers=3, heads=2, kv_heads=1, ffn=352, vocab=321, seed=106, tied=False, shards=3),
         what="3 safetensors shards + model.safetensors.index.json, untied, GQA 2:1, head_dim 64, 3 layers"),
    dict(name="tied_lmhead_4layers_boundary", n_tokens=64, n_ctx=0,
         writer=dict(hidden=64, layers=4, heads=2, kv_heads=2, ffn=160, vocab=321, seed=107, lm_head_when_tied=True,
                     max_position=64, original_max_position=64),
         what="tied checkpoint that also stores lm_head.weight, 4 layers, T == max_pos == original (short factors "
              "at the boundary)"),
    dict(name="ctx_beyond_max_pos", n_tokens=64, n_ctx=64,
         writer=dict(hidden=128, layers=2, heads=4, kv_heads=2, ffn=352, vocab=321, seed=108,
                     max_position=48, original_max_position=48),
         what="sequence longer than max_position_embeddings == original: HF rebuilds the table for T > original "
              "with the LONG factors (mscale stays 1); the engine with n_ctx 64 must do the same"),
]

# Tolerances, relative to the scale s = max(1, max|golden logits| of the case). See
# tests/data/golden/README.md for how they were chosen (observed values in the manifest notes).
TOLERANCES = dict(
    exact_max_abs=1e-5,         # exact mode (fp32 activations, f32 KV) vs golden, |diff| <= tol * s
    fast_max_abs=4e-2,          # fast mode (bf16 activations allowed, bf16 KV) vs golden
    fast_min_argmax_agree=0.9,  # fraction of positions whose argmax equals the golden's
    consistency_max_abs=5e-6,   # same model, other call pattern (decode / chunks / truncate / threads)
)


def build_manifest():
    cases = []
    for c in CASES:
        w = dict(c["writer"])
        for k, v in WRITER_DEFAULTS.items():
            w.setdefault(k, v)
        if w["original_max_position"] == 0:
            w["original_max_position"] = w["max_position"]
        tokens = _splitmix_tokens(0xC0FFEE + w["seed"], c["n_tokens"], w["vocab"])
        cases.append(dict(name=c["name"], what=c["what"], golden=c["name"] + ".bin", n_ctx=c["n_ctx"], writer=w,
                          tokens=tokens))
    return dict(format="mcpm-golden-manifest", version=1,
                generated_by="tools/reference/minicpm_ref.py manifest (edit CASES there, not this file)",
                hash="XXH64 seed 0 over the *.json and *.safetensors files of the checkpoint folder, sorted by name",
                tolerances=TOLERANCES, cases=cases)


# ----------------------------------------------------------------------------------------------
# CLI


def _max_rel(a, b):
    s = max(1.0, float(np.abs(b).max()))
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max()) / s


def cmd_manifest(args):
    m = build_manifest()
    text = json.dumps(m, indent=1)
    # one line per list of integers (the token sequences)
    text = re.sub(r"\[\s*(-?\d+(?:,\s*-?\d+)*)\s*\]",
                  lambda mo: "[" + ", ".join(x.strip() for x in mo.group(1).split(",")) + "]", text)
    with open(args.out, "w") as f:
        f.write(text + "\n")
    print(f"wrote {args.out} ({len(m['cases'])} cases)")


def cmd_goldens(args):
    with open(args.manifest) as f:
        m = json.load(f)
    os.makedirs(args.out_dir, exist_ok=True)
    for case in m["cases"]:
        if args.case and case["name"] not in args.case:
            continue
        folder = os.path.join(args.checkpoints, case["name"])
        h, files = checkpoint_hash(folder)
        logits = compute_logits(folder, case["tokens"], args.kind)
        out = os.path.join(args.out_dir, case["golden"])
        write_golden(out, case["name"], args.kind, h, case["tokens"], logits)
        print(f"{case['name']:30s} hash {h:016x} ({len(files)} files)  T={logits.shape[0]} V={logits.shape[1]} "
              f"max|logit| {np.abs(logits).max():.4f}  -> {out}")
    if not args.case:  # drop goldens of cases that are no longer in the manifest
        keep = {c["golden"] for c in m["cases"]}
        for f in os.listdir(args.out_dir):
            if f.endswith(".bin") and f not in keep:
                os.remove(os.path.join(args.out_dir, f))
                print(f"removed stale {f}")


def cmd_verify(args):
    with open(args.manifest) as f:
        m = json.load(f)
    gdir = os.path.dirname(os.path.abspath(args.manifest))
    ok = True
    for case in m["cases"]:
        folder = os.path.join(args.checkpoints, case["name"])
        g = read_golden(os.path.join(gdir, case["golden"]))
        h, _ = checkpoint_hash(folder)
        l32 = compute_logits(folder, case["tokens"], "fp32")
        l64 = compute_logits(folder, case["tokens"], "fp64")
        lbf = compute_logits(folder, case["tokens"], "hf-bf16")
        same = h == g["hash"] and g["tokens"] == case["tokens"] and np.array_equal(l32, g["logits"])
        ok &= same
        agree = float(np.mean(lbf.argmax(-1) == l64.argmax(-1)))
        print(f"{case['name']:30s} {'OK ' if same else 'DIFF'} hash {'ok' if h == g['hash'] else 'CHANGED'}  "
              f"|fp32-fp64|/s {_max_rel(l32, l64):.2e}  |hfbf16-fp64|/s {_max_rel(lbf, l64):.2e} "
              f"(argmax agree {agree:.2f})  max|logit| {np.abs(l64).max():.3f}")
    return 0 if ok else 1


def cmd_logits(args):
    tokens = [int(t) for t in args.tokens.split(",")]
    kind = "hf-bf16" if args.hf_bf16 else ("fp64" if args.dtype == "float64" else "fp32")
    logits = compute_logits(args.model, tokens, kind)
    if args.out:
        h, _ = checkpoint_hash(args.model)
        write_golden(args.out, os.path.basename(os.path.normpath(args.model))[:31], kind, h, tokens, logits)
    np.set_printoptions(precision=5, suppress=True, linewidth=140)
    print(f"{kind} logits [{logits.shape[0]}, {logits.shape[1]}]; argmax per position: {logits.argmax(-1).tolist()}")
    print("last row, first 10:", logits[-1, :10])


def cmd_compare(args):
    a, b = read_golden(args.a), read_golden(args.b)
    if a["tokens"] != b["tokens"]:
        print("token sequences differ")
        return 1
    d = np.abs(a["logits"].astype(np.float64) - b["logits"])
    print(f"{a['name']} ({a['kind']}) vs {b['name']} ({b['kind']}): max|diff| {d.max():.3e}, "
          f"relative to max(1,max|b|) {_max_rel(a['logits'], b['logits']):.3e}, "
          f"argmax agree {np.mean(a['logits'].argmax(-1) == b['logits'].argmax(-1)):.3f}")
    return 0


def cmd_selftest(args):
    vectors = {b"": 0xEF46DB3751D8E999, b"a": 0xD24EC4F1A98C6E5B, b"abc": 0x44BC2CF5AD770999}
    ok = all(xxh64(k) == v for k, v in vectors.items())
    try:  # cross-check longer inputs with the system libxxhash when present
        import ctypes
        lib = ctypes.CDLL("libxxhash.so.0")
        lib.XXH64.restype = ctypes.c_uint64
        lib.XXH64.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64]
        rng = np.random.default_rng(1)
        for n in (0, 1, 3, 4, 7, 8, 31, 32, 33, 63, 64, 100, 1000, 4099):
            data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
            ok &= lib.XXH64(data, n, 0) == xxh64(data)
        print("libxxhash cross-check done")
    except OSError:
        print("libxxhash.so.0 not found: test vectors only")
    print("xxh64 selftest", "OK" if ok else "FAILED")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("manifest", help="write the manifest JSON from CASES")
    p.add_argument("--out", required=True)
    p.set_defaults(fn=cmd_manifest)
    p = sub.add_parser("goldens", help="write <case>.bin for every case of a manifest")
    p.add_argument("--manifest", required=True)
    p.add_argument("--checkpoints", required=True, help="folder with one checkpoint folder per case")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--case", action="append", help="only these cases")
    p.add_argument("--kind", choices=list(KINDS), default="fp32",
                   help="fp32 for the committed goldens; fp64 / hf-bf16 to study an engine against those "
                        "(copy the manifest next to them and point MCPM_GOLDEN_MANIFEST at it)")
    p.set_defaults(fn=cmd_goldens)
    p = sub.add_parser("verify", help="recompute every golden and compare; print fp64 / hf-bf16 differences")
    p.add_argument("--manifest", required=True)
    p.add_argument("--checkpoints", required=True)
    p.set_defaults(fn=cmd_verify)
    p = sub.add_parser("logits", help="logits of one checkpoint folder")
    p.add_argument("--model", required=True)
    p.add_argument("--tokens", required=True, help="comma-separated token ids")
    p.add_argument("--hf-bf16", action="store_true", help="HF eager bfloat16 rounding points")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--out", help="write a golden file")
    p.set_defaults(fn=cmd_logits)
    p = sub.add_parser("compare", help="compare two golden files")
    p.add_argument("a")
    p.add_argument("b")
    p.set_defaults(fn=cmd_compare)
    p = sub.add_parser("selftest", help="XXH64 test vectors")
    p.set_defaults(fn=cmd_selftest)
    args = ap.parse_args()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    sys.exit(args.fn(args) or 0)


if __name__ == "__main__":
    main()
