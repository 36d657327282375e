#!/usr/bin/env python3
"""Independent GPTQ folder writer (numpy only; no minicpm.cpp code, no torch, no AutoGPTQ).

Reads a dense MiniCPM checkpoint folder (safetensors, f32/bf16/f16), quantizes every decoder
linear (q/k/v/o/gate/up/down_proj) round-to-nearest with the GPTQ reference quantizer and writes

  --out DIR   an AutoGPTQ / GPTQModel folder: <linear>.qweight int32 [K*b/32, N] (codes along K,
              32/b per word, LSB first), <linear>.qzeros int32 [G, N*b/32] (zero codes along N;
              v1 "gptq" stores zero-1, "gptq_v2" the zero), <linear>.scales f16|bf16 [G, N],
              <linear>.g_idx int32 [K]; quantization_config in config.json in one producer's
              key style (autogptq, gptqmodel with "meta", optimum) or in quantize_config.json only;
  --deq DIR   the same checkpoint with every linear replaced by its dequantized f32 weights
              w[n, k] = scales[g_idx[k], n] * (q[k, n] - zero[g_idx[k], n]).

--act-order assigns the input channels to groups through a random permutation (g_idx = rank // g,
non-monotonic), as GPTQ desc_act without static groups writes it.
"""
import argparse
import json
import os
import shutil
import struct

import numpy as np

LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
DT = {"F32": np.float32, "F16": np.float16, "I32": np.int32, "I64": np.int64}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = data[b:e]
        if info["dtype"] == "BF16":
            a = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
            out[name] = ("BF16", a.reshape(info["shape"]))
        else:
            out[name] = (info["dtype"], np.frombuffer(raw, dtype=DT[info["dtype"]]).reshape(info["shape"]))
    return out


def to_bf16_bits(a):
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    r = (u + 0x7FFF + ((u >> 16) & 1)) >> 16  # round to nearest even (finite values)
    return r.astype(np.uint16)


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, (dtype, arr) in tensors.items():
        if dtype == "BF16":
            raw = to_bf16_bits(arr).tobytes()
        else:
            raw = np.ascontiguousarray(arr, dtype=DT[dtype]).tobytes()
        pad = (-len(raw)) % 8
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw + b"\0" * pad)
        off += len(raw) + pad
        header[name]["data_offsets"][1] = off - pad
    h = json.dumps(header).encode()
    h += b" " * ((-len(h)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def quantize(W, bits, group, sym, act_order, scale_dtype, rng):
    N, K = W.shape
    g = K if group == -1 else group
    G = K // g
    maxq = 2 ** bits - 1
    if act_order:
        rank = np.empty(K, dtype=np.int64)
        rank[rng.permutation(K)] = np.arange(K)
        g_idx = (rank // g).astype(np.int32)
    else:
        g_idx = (np.arange(K) // g).astype(np.int32)
    scale = np.zeros((G, N), dtype=np.float32)
    zero = np.zeros((G, N), dtype=np.int64)
    q = np.zeros((N, K), dtype=np.int64)
    for j in range(G):
        cols = np.nonzero(g_idx == j)[0]
        w = W[:, cols]
        xmin = np.minimum(w.min(axis=1), 0)
        xmax = np.maximum(w.max(axis=1), 0)
        if sym:
            xmax = np.maximum(-xmin, xmax)
            xmin = np.where(xmin < 0, -xmax, xmin)
        both0 = (xmin == 0) & (xmax == 0)
        xmin[both0], xmax[both0] = -1, 1
        s = (xmax - xmin) / maxq
        # the stored (rounded) scale is the one the codes are computed with
        if scale_dtype == "F16":
            s = s.astype(np.float16).astype(np.float32)
        else:
            s = (to_bf16_bits(s).astype(np.uint32) << 16).view(np.float32)
        z = np.full(N, (maxq + 1) // 2) if sym else np.round(-xmin / s).astype(np.int64)
        z = np.clip(z, 1, maxq)  # keeps v1's zero-1 representable
        scale[j], zero[j] = s, z
        q[:, cols] = np.clip(np.round(w / s[:, None]) + z[:, None], 0, maxq)
    deq = (scale[g_idx].T * (q - zero[g_idx].T)).astype(np.float32)
    return q, zero, scale, g_idx, deq


def pack_rows(codes, bits):  # codes [R, C] -> words [R // (32/b), C], packing along R
    pw = 32 // bits
    R, C = codes.shape
    words = np.zeros((R // pw, C), dtype=np.uint32)
    for i in range(pw):
        words |= (codes[i::pw].astype(np.uint32) & (2 ** bits - 1)) << (bits * i)
    return words.view(np.int32)


def config_dict(style, bits, group, sym, act_order, v2):
    fmt = "gptq_v2" if v2 else "gptq"
    if style == "autogptq":
        return {"bits": bits, "group_size": group, "damp_percent": 0.01, "desc_act": act_order, "static_groups": False,
                "sym": sym, "true_sequential": True, "model_name_or_path": None, "model_file_base_name": "model",
                "quant_method": "gptq", "checkpoint_format": fmt}
    if style == "gptqmodel":
        return {"bits": bits, "dynamic": None, "group_size": group, "desc_act": act_order, "sym": sym, "lm_head": False,
                "quant_method": "gptq", "checkpoint_format": fmt, "pack_dtype": "int32",
                "meta": {"quantizer": ["gptqmodel:4.2.5"], "uri": "https://github.com/modelcloud/gptqmodel",
                         "damp_percent": 0.05, "damp_auto_increment": 0.01, "static_groups": False,
                         "true_sequential": True, "mse": 0.0}}
    assert style in ("optimum", "quantize_config")
    d = {"bits": bits, "group_size": group, "damp_percent": 0.1, "desc_act": act_order, "sym": sym,
         "true_sequential": True, "quant_method": "gptq", "use_exllama": True, "exllama_config": {"version": 1},
         "dataset": "c4", "tokenizer": None, "batch_size": 1, "model_seqlen": 2048, "block_name_to_quantize": None}
    if v2:
        d["checkpoint_format"] = d["format"] = "gptq_v2"
    return d


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--deq", required=True)
    ap.add_argument("--bits", type=int, default=4)
    ap.add_argument("--group", type=int, default=128)
    ap.add_argument("--asym", action="store_true")
    ap.add_argument("--act-order", action="store_true")
    ap.add_argument("--v2", action="store_true")
    ap.add_argument("--scale-dtype", choices=["F16", "BF16"], default="F16")
    ap.add_argument("--style", choices=["autogptq", "gptqmodel", "optimum", "quantize_config"], default="autogptq")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    tensors = read_safetensors(os.path.join(a.src, "model.safetensors"))
    out, deq = {}, {}
    for name, (dt, arr) in tensors.items():
        if any(name.endswith(f"{l}.weight") for l in LINEARS):
            W = arr.astype(np.float32)
            q, zero, scale, g_idx, d = quantize(W, a.bits, a.group, not a.asym, a.act_order, a.scale_dtype, rng)
            base = name[: -len(".weight")]
            stored_zero = zero if a.v2 else zero - 1
            out[base + ".qweight"] = ("I32", pack_rows(q.T, a.bits))
            out[base + ".qzeros"] = ("I32", pack_rows(stored_zero.T, a.bits).T.copy())
            out[base + ".scales"] = (a.scale_dtype, scale)
            out[base + ".g_idx"] = ("I32", g_idx)
            deq[name] = ("F32", d)
        else:
            out[name] = (dt, arr)
            deq[name] = (dt, arr)
    for d in (a.out, a.deq):
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(a.src):
            if f != "model.safetensors" and os.path.isfile(os.path.join(a.src, f)):
                shutil.copy(os.path.join(a.src, f), os.path.join(d, f))
    write_safetensors(os.path.join(a.out, "model.safetensors"), out)
    write_safetensors(os.path.join(a.deq, "model.safetensors"), deq)
    qc = config_dict(a.style, a.bits, a.group, not a.asym, a.act_order, a.v2)
    with open(os.path.join(a.src, "config.json")) as f:
        cfg = json.load(f)
    if a.style == "quantize_config":
        with open(os.path.join(a.out, "quantize_config.json"), "w") as f:
            json.dump(qc, f, indent=2)
    else:
        cfg["quantization_config"] = qc
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)


if __name__ == "__main__":
    main()
