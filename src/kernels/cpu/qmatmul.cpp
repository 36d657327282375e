// Matmul over quantized weights (types q8 / q4 / t2 of kernels/weight_types.h), any T:
//   default: activations quantized to int8 once per token row (ref::quantize_act), then the
//            table's integer dot kernel of the best ISA (or ctx.force_isa) per (row, token); a
//            thread's rows are visited row by row with every token inside, so a weight row is read
//            from memory once per call (decode: memory-bound stream; prefill: row kept in L1).
//   exact (ctx.bf16_activations == false, `--exact`): fp32 activations against the dequantized
//            row (the reference dequant), weights still read once per call.
// Rows are independent of T and of the other rows, so row-invariant mode needs nothing extra.
#include <algorithm>
#include <cstring>

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

}  // namespace

QDotFn qdot_kernel(const Matrix& W, Isa isa) {
  const WeightTypeInfo& info = weight_type_info(W);
  return info.dot[size_t(isa)];
}

void qmatmul(const Context& ctx, const float* x, int64_t T, const Matrix& W, float* y, float alpha, float beta) {
  const int64_t N = W.rows, K = W.cols;
  if (T <= 0 || N <= 0) return;
  check_quant_matrix(W, "matmul");
  if (!ctx.bf16_activations) {
    ctx.pool->parallel_for(N, [&](int64_t n0, int64_t n1) { exact_rows(x, T, W, y, alpha, beta, n0, n1); });
    return;
  }
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
  ctx.pool->parallel_for(N, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n)
      for (int64_t t = 0; t < T; ++t)
        scale_out(y[t * N + n], dot(W, n, QuantAct{q + t * K, d + t * nb, gs + t * ng}), alpha, beta);
  });
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
