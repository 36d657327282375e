// fp32 GEMM kernels for the trainer: the products the backward pass needs (dX = dY·W, dW = dY^T·X)
// and the ones attention needs (Q·K^T, P·V and their transposes). Two shapes cover all of them:
//
//   gemm_nn: C[M,N] = alpha * sum_k A(i,k) * B[k,N]      (+ C when accumulate)
//            A(i,k) = A[i*a_rs + k*a_cs] (any strides: a transposed operand is just a stride swap),
//            B row-major with row stride ldb, C row-major with row stride ldc.
//   gemm_nt: C[M,N] = alpha * sum_k A[i*lda + k] * B[j*ldb + k]   (+ C when accumulate)
//            (both operands row-major along k: x·W^T, Q·K^T).
//
// Determinism: every element of C is computed by exactly one thread, with k visited in one fixed
// order, so results do not depend on the thread count (resume after a checkpoint is bit-identical).
// `pool == nullptr` runs on the calling thread (used inside parallel regions: no nesting).
// ref:: holds the scalar oracle (double accumulation) each fast kernel is tested against.
#pragma once
#include <cstdint>

#include "core/thread_pool.h"

namespace mcpm::train {

void gemm_nn(int64_t M, int64_t N, int64_t K, const float* A, int64_t a_rs, int64_t a_cs, const float* B, int64_t ldb,
             float* C, int64_t ldc, float alpha, bool accumulate, ThreadPool* pool);

void gemm_nt(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
             int64_t ldc, float alpha, bool accumulate, ThreadPool* pool);

// Name of the SIMD target the kernels dispatch to on this machine (e.g. "AVX3").
const char* gemm_target_name();

namespace ref {
void gemm_nn(int64_t M, int64_t N, int64_t K, const float* A, int64_t a_rs, int64_t a_cs, const float* B, int64_t ldb,
             float* C, int64_t ldc, float alpha, bool accumulate);
void gemm_nt(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
             int64_t ldc, float alpha, bool accumulate);
}  // namespace ref

}  // namespace mcpm::train
