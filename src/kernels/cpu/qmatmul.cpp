// Matmul over quantized weights (types q8 / q4 / t2 of kernels/weight_types.h):
//   T > kGemvMaxT (prefill, not row-invariant): panels of rows dequantized into scratch (bf16, or
//            f32 in exact mode) and run through the dense GEMM (AMX / AVX512-BF16 / Highway);
//   otherwise (decode, row-invariant batches, ctx.force_isa set):
//   default: activations quantized to int8 once per token row (ref::quantize_act), then the
//            table's integer dot kernel of the best ISA (or ctx.force_isa) per (row, token) (T > 1:
//            its multi-token form, weights unpacked once per group of tokens, same values); a
//            thread's rows are visited row by row with every token inside, so a weight row is read
//            from memory once per call (decode: memory-bound stream; prefill: row kept in L1).
//   exact (ctx.bf16_activations == false, `--exact`): fp32 activations against the dequantized
//            row (the reference dequant), weights still read once per call.
// Rows are independent of T and of the other rows, so row-invariant mode needs nothing extra.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/internal.h"
#include "kernels/cpu/qdot.h"
#include "kernels/cpu/scratch.h"
#include "kernels/ref/quant_ref.h"

namespace mcpm::cpu {

namespace {

void scale_out(float& o, float v, float alpha, float beta) { o = alpha * v + (beta != 0.0f ? beta * o : 0.0f); }

void exact_rows(const float* x, int64_t T, const Matrix& W, float* y, float alpha, float beta, int64_t n0, int64_t n1) {
  const int64_t K = W.cols, N = W.rows;
  float* w = static_cast<float*>(thread_scratch(ScratchSlot::GemvX, size_t(K) * sizeof(float) + 64));
  for (int64_t n = n0; n < n1; ++n) {
    ref::dequant_row(W, n, w);
    for (int64_t t = 0; t < T; ++t) {
      const float* xt = x + t * K;
      float acc = 0.0f;
      for (int64_t k = 0; k < K; ++k) acc += w[k] * xt[k];
      scale_out(y[t * N + n], acc, alpha, beta);
    }
  }
}

// Row n of W in input order as f32 (fast form of ref::dequant_row: unpack, then one multiply-add
// per element; the same values).
void dequant_row_fast(const Matrix& W, int64_t n, uint8_t* codes, float* out) {
  const WeightTypeInfo& info = weight_type_info(W);
  const int64_t K = W.cols, ng = K / W.group;
  info.unpack_codes(static_cast<const uint8_t*>(W.data) + size_t(n) * info.row_bytes(K), K, codes);
  const float* s = W.scales + n * ng;
  const float* m = W.mins ? W.mins + n * ng : nullptr;
  for (int64_t g = 0; g < ng; ++g) {
    const float sg = s[g];
    const int64_t k0 = g * W.group, k1 = k0 + W.group;
    if (W.perm) {
      for (int64_t k = k0; k < k1; ++k) {
        const float c = info.signed_codes ? float(int8_t(codes[k])) : float(codes[k]);
        out[W.perm[k]] = m ? sg * c + m[g] : sg * (c - float(info.code_bias));
      }
    } else if (info.signed_codes) {
      const float mg = m ? m[g] : 0.0f;
      for (int64_t k = k0; k < k1; ++k) out[k] = sg * float(int8_t(codes[k])) + mg;
    } else if (m) {
      const float mg = m[g];
      for (int64_t k = k0; k < k1; ++k) out[k] = sg * float(codes[k]) + mg;
    } else {
      const float bias = float(info.code_bias);
      for (int64_t k = k0; k < k1; ++k) out[k] = sg * (float(codes[k]) - bias);
    }
  }
}

// Batched matmul (T > kGemvMaxT): panels of rows are dequantized (bf16 with bf16_activations,
// else f32) into the caller's scratch and run through the dense GEMM of matmul(); the dequant
// cost is N*K per call against 2*T*N*K multiply-adds.
void dense_panels(const Context& ctx, const float* x, int64_t T, const Matrix& W, float* y, float alpha, float beta) {
  const int64_t N = W.rows, K = W.cols;
  const bool bf16 = ctx.bf16_activations;
  const size_t es = bf16 ? 2 : 4;
  const int64_t P = std::min<int64_t>(N, std::max<int64_t>(64, int64_t((size_t(8) << 20) / (size_t(K) * es)) / 64 * 64));
  char* buf = static_cast<char*>(thread_scratch(ScratchSlot::QuantPanel, size_t(P * K) * es + size_t(T * P) * 4 + 128));
  float* yp = reinterpret_cast<float*>(buf + round_up(size_t(P * K) * es, kCacheLine));
  for (int64_t n0 = 0; n0 < N; n0 += P) {
    const int64_t np = std::min(P, N - n0);
    ctx.pool->parallel_for(np, [&](int64_t r0, int64_t r1) {
      uint8_t* codes = static_cast<uint8_t*>(thread_scratch(ScratchSlot::GemvUp, size_t(K) * 5 + 64));
      float* row = reinterpret_cast<float*>(codes + round_up(size_t(K), kCacheLine));
      for (int64_t r = r0; r < r1; ++r) {
        if (bf16) {
          dequant_row_fast(W, n0 + r, codes, row);
          uint16_t* o = reinterpret_cast<uint16_t*>(buf) + r * K;
          for (int64_t k = 0; k < K; ++k) o[k] = f32_to_bf16(row[k]);
        } else {
          dequant_row_fast(W, n0 + r, codes, reinterpret_cast<float*>(buf) + r * K);
        }
      }
    });
    const Matrix dense{buf, bf16 ? DType::BF16 : DType::F32, np, K};
    Context c = ctx;
    c.force_path = MatmulPath::Auto;
    matmul(c, x, T, dense, yp, 1.0f, 0.0f);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t r = 0; r < np; ++r) scale_out(y[t * N + n0 + r], yp[t * np + r], alpha, beta);
  }
}

}  // namespace

QDotFn qdot_kernel(const Matrix& W, Isa isa) {
  const WeightTypeInfo& info = weight_type_info(W);
  return info.dot[size_t(isa)];
}

namespace {

// Same activation quantization (type, K, group, column order): one QuantAct set serves all.
bool same_act_layout(const Matrix& a, const Matrix& b) {
  return a.type == b.type && a.cols == b.cols && a.group == b.group && a.perm == b.perm;
}

// The int8 path over n matrices that read the same x (n == 1: a plain matmul): activations
// quantized once into the caller's scratch, then one parallel region over all their rows.
void int8_matmuls(const Context& ctx, const float* x, int64_t T, const Matrix* const* Ws, float* const* ys, int n,
                  float alpha, float beta) {
  const Matrix& W = *Ws[0];
  const int64_t K = W.cols;
  const Isa isa = ctx.force_isa == Isa::Count ? best_isa() : ctx.force_isa;
  const QDotFn dot = qdot_kernel(W, isa);
  MCPM_CHECK(dot, "matmul: no {} kernel for {} weights in this build", isa_name(isa), weight_type_info(W).name);
  // Quantized activations of all T rows (caller's scratch): q [T, K] int8, d [T, K/32], gsum [T, K/group].
  const int64_t nb = K / kQBlock, ng = K / W.group;
  const size_t q_bytes = round_up(size_t(T * K), kCacheLine), d_bytes = round_up(size_t(T * nb) * 4, kCacheLine);
  char* buf = static_cast<char*>(thread_scratch(ScratchSlot::MatmulX, q_bytes + d_bytes + size_t(T * ng) * 4 + 64));
  auto* q = reinterpret_cast<int8_t*>(buf);
  auto* d = reinterpret_cast<float*>(buf + q_bytes);
  auto* gs = reinterpret_cast<float*>(buf + q_bytes + d_bytes);
  auto quantize = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) ref::quantize_act(x + t * K, W, q + t * K, d + t * nb, gs + t * ng);
  };
  if (T >= 16) ctx.pool->parallel_for(T, quantize);
  else quantize(0, T);
  // The four-row kernels measured 2x slower than the one-row ones in decode on this machine (q8,
  // 0.5B shape: 12.8-19.9 vs 24.2-40.8 tok/s, docs/quantization.md): off unless asked for.
  static const bool four_rows = [] {
    const char* v = std::getenv("MCPM_QDOT_FOUR_ROWS");
    return v && *v && std::strcmp(v, "0") != 0;
  }();
  const QDot4Fn dot4 = four_rows ? weight_type_info(W).dot4[size_t(isa)] : nullptr;
  // T > 1: the multi-token kernel unpacks each weight block once for a group of tokens; its values
  // are the one-row kernel's bit for bit, so rows stay independent of T (row-invariant batches).
  const QDotRowsFn dot_rows = T > 1 && !dot4 ? weight_type_info(W).dot_rows[size_t(isa)] : nullptr;
  std::vector<QuantAct> acts;
  if (dot_rows) {
    acts.resize(size_t(T));
    for (int64_t t = 0; t < T; ++t) acts[size_t(t)] = QuantAct{q + t * K, d + t * nb, gs + t * ng};
  }
  // Rows [n0, n1) of matrix Wm into ym [T, Wm.rows].
  auto rows = [&](const Matrix& Wm, float* ym, int64_t n0, int64_t n1) {
    const int64_t N = Wm.rows;
    int64_t n = n0;
    if (dot_rows) {  // results [n - n0][T] first, then y token by token (y's rows often alias in L1)
      float* o = static_cast<float*>(thread_scratch(ScratchSlot::GemvUp, size_t((n1 - n0) * T) * sizeof(float) + 64));
      for (; n < n1; ++n) dot_rows(Wm, n, acts.data(), int(T), o + (n - n0) * T);
      for (int64_t t = 0; t < T; ++t)
        for (n = n0; n < n1; ++n) scale_out(ym[t * N + n], o[(n - n0) * T + t], alpha, beta);
      return;
    }
    if (dot4)
      for (; n + 4 <= n1; n += 4)
        for (int64_t t = 0; t < T; ++t) {
          float o[4];
          dot4(Wm, n, QuantAct{q + t * K, d + t * nb, gs + t * ng}, o);
          for (int r = 0; r < 4; ++r) scale_out(ym[t * N + n + r], o[r], alpha, beta);
        }
    for (; n < n1; ++n)
      for (int64_t t = 0; t < T; ++t)
        scale_out(ym[t * N + n], dot(Wm, n, QuantAct{q + t * K, d + t * nb, gs + t * ng}), alpha, beta);
  };
  if (n == 1) return ctx.pool->parallel_for(W.rows, [&](int64_t n0, int64_t n1) { rows(W, ys[0], n0, n1); }, 4);
  // Rows of all matrices as one range [0, sum N_i): matrix i holds [off_i, off_i + N_i).
  std::vector<int64_t> off(size_t(n) + 1, 0);
  for (int i = 0; i < n; ++i) off[size_t(i) + 1] = off[size_t(i)] + Ws[i]->rows;
  ctx.pool->parallel_for(off[size_t(n)], [&](int64_t a0, int64_t a1) {
    for (int i = 0; i < n; ++i) {
      const int64_t b = std::max(a0, off[size_t(i)]), e = std::min(a1, off[size_t(i) + 1]);
      if (b < e) rows(*Ws[i], ys[i], b - off[size_t(i)], e - off[size_t(i)]);
    }
  }, 4);
}

}  // namespace

void qmatmul(const Context& ctx, const float* x, int64_t T, const Matrix& W, float* y, float alpha, float beta) {
  if (T <= 0 || W.rows <= 0) return;
  check_quant_matrix(W, "matmul");
  if (T > kGemvMaxT && !ctx.row_invariant && ctx.force_isa == Isa::Count) return dense_panels(ctx, x, T, W, y, alpha, beta);
  if (!ctx.bf16_activations) {
    ctx.pool->parallel_for(W.rows, [&](int64_t n0, int64_t n1) { exact_rows(x, T, W, y, alpha, beta, n0, n1); });
    return;
  }
  const Matrix* Ws[1] = {&W};
  float* ys[1] = {y};
  int8_matmuls(ctx, x, T, Ws, ys, 1, alpha, beta);
}

void qmatmul_shared_input(const Context& ctx, const float* x, int64_t T, const Matrix* const* Ws, float* const* ys,
                          int n) {
  bool fused = T > 0 && n > 1 && ctx.bf16_activations && (T <= kGemvMaxT || ctx.row_invariant || ctx.force_isa != Isa::Count);
  for (int i = 0; i < n; ++i) {
    check_quant_matrix(*Ws[i], "matmul");
    fused = fused && same_act_layout(*Ws[0], *Ws[i]) && Ws[i]->rows > 0;
  }
  if (!fused) {
    for (int i = 0; i < n; ++i) qmatmul(ctx, x, T, *Ws[i], ys[i]);
    return;
  }
  int8_matmuls(ctx, x, T, Ws, ys, n, 1.0f, 0.0f);
}

void qembed(const Matrix& table, const int32_t* ids, int64_t T, float scale, float* out) {
  const int64_t H = table.cols;
  for (int64_t t = 0; t < T; ++t) {
    MCPM_ASSERT(ids[t] >= 0 && ids[t] < table.rows);
    float* o = out + t * H;
    ref::dequant_row(table, ids[t], o);
    for (int64_t i = 0; i < H; ++i) o[i] *= scale;
  }
}

}  // namespace mcpm::cpu
