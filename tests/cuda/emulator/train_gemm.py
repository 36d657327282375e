#!/usr/bin/env python3
"""Transcription of the cuBLAS calls of src/train/cuda_backend.cpp (column-major GEMMs with
transpose flags, leading dimensions and per-(sequence, head) pointer arrays), run against the
row-major math of the CPU trainer (src/train/ref_ops.h). It checks the argument mapping, which is
where a column-major port goes wrong; the GPU test TrainCuda.* is the real check.

cuBLAS semantics emulated: C(m x n, ld ldc) = alpha * op(A) op(B) + beta * C, every matrix
column-major in a flat buffer starting at a pointer (an offset here), op(X) = X or X^T.
"""
import sys

import numpy as np

rng = np.random.default_rng(1)


def colmajor(buf, off, rows, cols, ld):
    """The rows x cols column-major view of buf at offset off with leading dimension ld (a copy)."""
    out = np.empty((rows, cols))
    for c in range(cols):
        out[:, c] = buf[off + c * ld: off + c * ld + rows]
    return out


def gemm(ta, tb, m, n, k, alpha, A, a_off, lda, B, b_off, ldb, beta, C, c_off, ldc):
    opA = colmajor(A, a_off, k, m, lda).T if ta else colmajor(A, a_off, m, k, lda)
    opB = colmajor(B, b_off, n, k, ldb).T if tb else colmajor(B, b_off, k, n, ldb)
    cur = colmajor(C, c_off, m, n, ldc)
    res = alpha * opA @ opB + beta * cur
    for c in range(n):
        C[c_off + c * ldc: c_off + c * ldc + m] = res[:, c]


T_, N_ = True, False


# ---- linear layers: y [R, N] = x [R, K] W^T,  W [N, K] -----------------------------------------
def linear_forward(x, R, W, N, K, y, alpha, acc):
    gemm(T_, N_, N, R, K, alpha, W, 0, K, x, 0, K, 1.0 if acc else 0.0, y, 0, N)


def linear_backward_dx(dy, R, W, N, K, alpha, dx, acc):
    gemm(N_, N_, K, R, N, alpha, W, 0, K, dy, 0, N, 1.0 if acc else 0.0, dx, 0, K)


def linear_backward_dw(dy, x, R, N, K, alpha, dW):
    gemm(N_, T_, K, N, R, alpha, x, 0, K, dy, 0, N, 1.0, dW, 0, K)


def check_linear():
    R, N, K = 7, 5, 9
    x, W, dy = rng.standard_normal((R, K)), rng.standard_normal((N, K)), rng.standard_normal((R, N))
    y0, dx0, dW0 = rng.standard_normal((R, N)), rng.standard_normal((R, K)), rng.standard_normal((N, K))
    y = y0.flatten().copy()
    linear_forward(x.flatten(), R, W.flatten(), N, K, y, 0.7, True)
    assert np.allclose(y.reshape(R, N), y0 + 0.7 * x @ W.T), "linear_forward"
    dx = dx0.flatten().copy()
    linear_backward_dx(dy.flatten(), R, W.flatten(), N, K, 1.3, dx, False)
    assert np.allclose(dx.reshape(R, K), 1.3 * dy @ W), "linear_backward_dx"
    dW = dW0.flatten().copy()
    linear_backward_dw(dy.flatten(), x.flatten(), R, N, K, 0.9, dW)
    assert np.allclose(dW.reshape(N, K), dW0 + 0.9 * dy.T @ x), "linear_backward_dw"


# ---- attention: the pointer arrays of fill_pointers_kernel and the batched calls -----------------
class Strides:
    def __init__(s, B, T, nh, nkv, d):
        s.B, s.T, s.nh, s.nkv, s.d, s.ldq, s.ldkv = B, T, nh, nkv, d, nh * d, nkv * d

    def qh(s, buf): return (buf, s.T * s.ldq, s.d, False)

    def kv(s, buf): return (buf, s.T * s.ldkv, s.d, True)

    def prob(s, buf): return (buf, s.nh * s.T * s.T, s.T * s.T, False)


def pointers(s, per_kv_head, member, op):
    buf, stride_b, stride_h, is_kv = op
    G = s.nh // s.nkv
    heads = s.nkv if per_kv_head else s.nh
    out = []
    for i in range(s.B * heads):
        b, x = divmod(i, heads)
        qh = x * G + member if per_kv_head else x
        kh = x if per_kv_head else x // G
        out.append(b * stride_b + (kh if is_kv else qh) * stride_h)
    return out


def batched(s, per_kv_head, member, ops, ta, tb, m, n, k, alpha, lda, ldb, beta, ldc):
    pa, pb, pc = (pointers(s, per_kv_head, member, o) for o in ops)
    # The compute-type choice of batched(): a FAST (bf16/tf32) type needs every pointer 16-byte
    # aligned (offsets % 4 floats; the buffers start 256-byte aligned) when (k * 4) % 16 == 0.
    fast = not (k % 4 == 0 and any(o[1] % 4 or o[2] % 4 for o in ops))
    if fast and k % 4 == 0:
        assert all(off % 4 == 0 for off in pa + pb + pc), "FAST batched GEMM with misaligned pointers"
    for a, b, c in zip(pa, pb, pc):
        gemm(ta, tb, m, n, k, alpha, ops[0][0], a, lda, ops[1][0], b, ldb, beta, ops[2][0], c, ldc)


def causal_softmax(P, n_mats, T):
    M = P.reshape(n_mats, T, T)
    for mtx in M:
        for i in range(T):
            row = mtx[i, :i + 1]
            e = np.exp(row - row.max())
            mtx[i, :] = 0
            mtx[i, :i + 1] = e / e.sum()


def causal_softmax_backward(P, dP, n_mats, T, scale):
    Pm, D = P.reshape(n_mats, T, T), dP.reshape(n_mats, T, T)
    for p, dp in zip(Pm, D):
        for i in range(T):
            dot = (p[i, :i + 1] * dp[i, :i + 1]).sum()
            dp[i, :i + 1] = scale * p[i, :i + 1] * (dp[i, :i + 1] - dot)
            dp[i, i + 1:] = 0


def attention_forward(q, k, v, B, T, nh, nkv, d, scale, out, probs):
    s = Strides(B, T, nh, nkv, d)
    batched(s, False, 0, [s.kv(k), s.qh(q), s.prob(probs)], T_, N_, T, T, d, scale, s.ldkv, s.ldq, 0.0, T)
    causal_softmax(probs, B * nh, T)
    batched(s, False, 0, [s.kv(v), s.prob(probs), s.qh(out)], N_, N_, d, T, T, 1.0, s.ldkv, T, 0.0, s.ldq)


def attention_backward(dout, q, k, v, probs, B, T, nh, nkv, d, scale, dq, dk, dv):
    s = Strides(B, T, nh, nkv, d)
    dS = np.zeros(B * nh * T * T)
    batched(s, False, 0, [s.kv(v), s.qh(dout), s.prob(dS)], T_, N_, T, T, d, 1.0, s.ldkv, s.ldq, 0.0, T)
    causal_softmax_backward(probs, dS, B * nh, T, scale)
    batched(s, False, 0, [s.kv(k), s.prob(dS), s.qh(dq)], N_, N_, d, T, T, 1.0, s.ldkv, T, 0.0, s.ldq)
    for m in range(nh // nkv):
        beta = 0.0 if m == 0 else 1.0
        batched(s, True, m, [s.qh(q), s.prob(dS), s.kv(dk)], N_, T_, d, T, T, 1.0, s.ldq, T, beta, s.ldkv)
        batched(s, True, m, [s.qh(dout), s.prob(probs), s.kv(dv)], N_, T_, d, T, T, 1.0, s.ldq, T, beta, s.ldkv)


def reference(q, k, v, dO, scale):
    """Row-major causal GQA attention and its backward (ref_ops.h), q [B, T, nh, d], k/v [B, T, nkv, d]."""
    B, T, nh, d = q.shape
    G = nh // k.shape[2]
    out, P = np.zeros_like(q), np.zeros((B, nh, T, T))
    dq, dk, dv = np.zeros_like(q), np.zeros_like(k), np.zeros_like(v)
    mask = np.tril(np.ones((T, T), dtype=bool))
    for b in range(B):
        for h in range(nh):
            g = h // G
            S = np.where(mask, scale * q[b, :, h] @ k[b, :, g].T, -np.inf)
            p = np.exp(S - S.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            P[b, h] = p
            out[b, :, h] = p @ v[b, :, g]
            dP = dO[b, :, h] @ v[b, :, g].T
            dS = p * (dP - (p * dP).sum(axis=1, keepdims=True)) * scale
            dq[b, :, h] = dS @ k[b, :, g]
            dk[b, :, g] += dS.T @ q[b, :, h]
            dv[b, :, g] += p.T @ dO[b, :, h]
    return out, P, dq, dk, dv


def check_attention(B, T, nh, nkv, d):
    q, dO = rng.standard_normal((B, T, nh, d)), rng.standard_normal((B, T, nh, d))
    k, v = rng.standard_normal((B, T, nkv, d)), rng.standard_normal((B, T, nkv, d))
    scale = 0.3
    out, probs = np.zeros(q.size), np.zeros(B * nh * T * T)
    attention_forward(q.flatten(), k.flatten(), v.flatten(), B, T, nh, nkv, d, scale, out, probs)
    dq, dk, dv = np.full(q.size, 9.0), np.full(k.size, 9.0), np.full(v.size, 9.0)
    attention_backward(dO.flatten(), q.flatten(), k.flatten(), v.flatten(), probs, B, T, nh, nkv, d, scale, dq, dk, dv)
    ref = reference(q, k, v, dO, scale)
    for name, got, want in zip(["out", "probs", "dq", "dk", "dv"], [out, probs, dq, dk, dv], ref):
        assert np.allclose(got, want.flatten()), f"attention {name} (B={B} T={T} nh={nh} nkv={nkv} d={d})"


def main():
    check_linear()
    for shape in [(2, 5, 6, 2, 4), (1, 7, 4, 4, 2), (2, 3, 8, 1, 6), (2, 4, 6, 2, 8), (1, 6, 2, 1, 4)]:
        check_attention(*shape)
    print("train_gemm: the cuBLAS argument mapping of the CUDA trainer matches the row-major math")
    return 0


if __name__ == "__main__":
    sys.exit(main())
