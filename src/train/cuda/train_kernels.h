// Launchers of the CUDA training kernels (train_kernels.cu): the non-GEMM ops of TrainBackend on
// device pointers, all fp32, all on `stream`. The GEMMs (linear layers, attention products) are
// cuBLAS calls in cuda_backend.cpp. Shapes as in backend.h / ref_ops.h. Reductions across rows
// that land in one weight gradient (embedding, RMSNorm weight) use atomics, so the GPU backward is
// not bit-reproducible run to run (the CPU backend is).
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace mcpm::train::cuda {

void embedding_forward(cudaStream_t s, const int32_t* ids, int64_t R, const float* E, int64_t H, float scale,
                       float* out);                                  // out [R, H]
void embedding_backward(cudaStream_t s, const int32_t* ids, int64_t R, const float* dout, int64_t H, float scale,
                        float* dE);                                  // dE +=
void rmsnorm_forward(cudaStream_t s, const float* x, int64_t R, int64_t H, const float* w, float eps, float* out,
                     float* rstd);                                   // out [R, H], rstd [R]
void rmsnorm_backward(cudaStream_t s, const float* dout, const float* x, const float* w, const float* rstd, int64_t R,
                      int64_t H, float* dx, float* dw);              // dx +=, dw +=
// sign +1: the rotation; -1: its transpose. x [B, T, nh, d] in place, cos/sin [>=T, d/2].
void rope(cudaStream_t s, float* x, int64_t B, int64_t T, int64_t nh, int64_t d, const float* cos, const float* sin,
          float sign);
// Row i of each [T, T] score matrix (scaled scores) becomes softmax over j <= i, zeros above.
void causal_softmax(cudaStream_t s, float* P, int64_t n_mats, int64_t T);
// dP (in place) -> dS = scale * P * (dP - sum_j P dP) on j <= i, zeros above.
void causal_softmax_backward(cudaStream_t s, const float* P, float* dP, int64_t n_mats, int64_t T, float scale);
void swiglu_forward(cudaStream_t s, const float* g, const float* u, int64_t n, float* h);
void swiglu_backward(cudaStream_t s, const float* dh, const float* g, const float* u, int64_t n, float* dg, float* du);
void cross_entropy(cudaStream_t s, float* logits, const int32_t* targets, const float* weight, int64_t R, int64_t V,
                   float* loss);
// Sum of squares in double with a fixed reduction tree (deterministic for a given n).
// partial: kSumSquaresBlocks doubles of scratch; result: one double on the device.
inline constexpr int kSumSquaresBlocks = 1024;
void sum_squares(cudaStream_t s, const float* x, size_t n, double* partial, double* result);
void scale(cudaStream_t s, float* x, size_t n, float factor);
void adamw(cudaStream_t s, float* p, const float* g, float* m, float* v, size_t n, float lr, float beta1, float beta2,
           float eps, float wd, float inv_bc1, float inv_bc2);

// Pointer arrays for cuBLAS batched attention GEMMs, one entry per (b, head) in b-major order.
// With per_kv_head = false the batch is B * nh query heads (kv head h / G); with true it is
// B * nkv kv heads taking query head g * G + member. Each array gets base + b*stride_b + head*stride_h,
// where "head" is the query head for q-like operands and the kv head for k-like ones.
struct AttnPtrOperand {
  const float* base = nullptr;
  int64_t stride_b = 0, stride_h = 0;
  bool kv = false;  // indexed by the kv head (k, v, dk, dv) rather than the query head
};
void fill_attention_pointers(cudaStream_t s, const AttnPtrOperand ops[3], void** const out[3], int64_t B, int64_t nh,
                             int64_t nkv, bool per_kv_head, int64_t member);

}  // namespace mcpm::train::cuda
