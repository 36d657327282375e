// SIMD GEMM kernels of gemm.h (Highway, run-time dispatch to the best target of this CPU).
//   gemm_nn: register tiles of 6 rows x 2 vectors; B rows are read as vectors, A elements are
//            broadcast. Loop order: column panel (outer) then row blocks, so a K x 2V panel of B
//            stays in L2 while every row block streams past it.
//   gemm_nt: register tiles of 4 x 4 dot products along k (16 vector accumulators, reduced once).
// Work is split into tasks that each own a block of C; k is never split, so every C element has
// one fixed summation order on any number of threads.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "train/gemm.cpp"
#include <hwy/foreach_target.h>  // must precede highway.h
#include <hwy/highway.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "train/gemm.h"

HWY_BEFORE_NAMESPACE();
namespace mcpm::train {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

inline void store_out(float* c, float v, float alpha, bool acc) { *c = alpha * v + (acc ? *c : 0.0f); }

// Scalar path for the edge columns [j0, j1) of rows [i0, i1) (same k order as the SIMD tiles).
inline void nn_scalar(int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t K, const float* A, int64_t a_rs,
                      int64_t a_cs, const float* B, int64_t ldb, float* C, int64_t ldc, float alpha, bool acc) {
  for (int64_t i = i0; i < i1; ++i)
    for (int64_t j = j0; j < j1; ++j) {
      float s = 0.0f;
      for (int64_t k = 0; k < K; ++k) s = std::fma(A[i * a_rs + k * a_cs], B[k * ldb + j], s);
      store_out(C + i * ldc + j, s, alpha, acc);
    }
}

#if HWY_HAVE_SCALABLE || HWY_TARGET == HWY_SCALAR
// Sizeless vector types cannot live in arrays: plain loops on these targets.
void NnBlock(int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t K, const float* A, int64_t a_rs, int64_t a_cs,
             const float* B, int64_t ldb, float* C, int64_t ldc, float alpha, bool acc) {
  nn_scalar(i0, i1, j0, j1, K, A, a_rs, a_cs, B, ldb, C, ldc, alpha, acc);
}
void NtBlock(int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t K, const float* A, int64_t lda, const float* B,
             int64_t ldb, float* C, int64_t ldc, float alpha, bool acc) {
  for (int64_t i = i0; i < i1; ++i)
    for (int64_t j = j0; j < j1; ++j) {
      float s = 0.0f;
      for (int64_t k = 0; k < K; ++k) s = std::fma(A[i * lda + k], B[j * ldb + k], s);
      store_out(C + i * ldc + j, s, alpha, acc);
    }
}
size_t VecLanes() { return 1; }
#else

size_t VecLanes() { return hn::Lanes(hn::ScalableTag<float>()); }

// MR rows x NV vectors of C at (i, j): acc[r][v] += A(i+r, k) * B[k, j + v*L].
template <int MR, int NV>
HWY_INLINE void NnTile(int64_t i, int64_t j, int64_t K, const float* HWY_RESTRICT A, int64_t a_rs, int64_t a_cs,
                       const float* HWY_RESTRICT B, int64_t ldb, float* HWY_RESTRICT C, int64_t ldc, float alpha,
                       bool acc) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  using V = hn::Vec<decltype(d)>;
  V c[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) c[r][v] = hn::Zero(d);
  const float* a = A + i * a_rs;
  const float* b = B + j;
  for (int64_t k = 0; k < K; ++k) {
    V bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = hn::LoadU(d, b + v * L);
    for (int r = 0; r < MR; ++r) {
      const V av = hn::Set(d, a[r * a_rs]);
      for (int v = 0; v < NV; ++v) c[r][v] = hn::MulAdd(av, bv[v], c[r][v]);
    }
    a += a_cs;
    b += ldb;
  }
  const V va = hn::Set(d, alpha);
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) {
      float* out = C + (i + r) * ldc + j + v * L;
      V res = hn::Mul(va, c[r][v]);
      if (acc) res = hn::Add(res, hn::LoadU(d, out));
      hn::StoreU(res, d, out);
    }
}

template <int NV>
HWY_INLINE void NnRows(int64_t i0, int64_t i1, int64_t j, int64_t K, const float* A, int64_t a_rs, int64_t a_cs,
                       const float* B, int64_t ldb, float* C, int64_t ldc, float alpha, bool acc) {
  int64_t i = i0;
  for (; i + 6 <= i1; i += 6) NnTile<6, NV>(i, j, K, A, a_rs, a_cs, B, ldb, C, ldc, alpha, acc);
  switch (i1 - i) {
    case 5: NnTile<5, NV>(i, j, K, A, a_rs, a_cs, B, ldb, C, ldc, alpha, acc); break;
    case 4: NnTile<4, NV>(i, j, K, A, a_rs, a_cs, B, ldb, C, ldc, alpha, acc); break;
    case 3: NnTile<3, NV>(i, j, K, A, a_rs, a_cs, B, ldb, C, ldc, alpha, acc); break;
    case 2: NnTile<2, NV>(i, j, K, A, a_rs, a_cs, B, ldb, C, ldc, alpha, acc); break;
    case 1: NnTile<1, NV>(i, j, K, A, a_rs, a_cs, B, ldb, C, ldc, alpha, acc); break;
    default: break;
  }
}

// Rows [i0, i1) x columns [j0, j1) of C.
void NnBlock(int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t K, const float* A, int64_t a_rs, int64_t a_cs,
             const float* B, int64_t ldb, float* C, int64_t ldc, float alpha, bool acc) {
  const int64_t L = int64_t(VecLanes());
  int64_t j = j0;
  for (; j + 2 * L <= j1; j += 2 * L) NnRows<2>(i0, i1, j, K, A, a_rs, a_cs, B, ldb, C, ldc, alpha, acc);
  for (; j + L <= j1; j += L) NnRows<1>(i0, i1, j, K, A, a_rs, a_cs, B, ldb, C, ldc, alpha, acc);
  if (j < j1) nn_scalar(i0, i1, j, j1, K, A, a_rs, a_cs, B, ldb, C, ldc, alpha, acc);
}

// MR rows of A x NR rows of B: dot products along k.
template <int MR, int NR>
HWY_INLINE void NtTile(int64_t i, int64_t j, int64_t K, const float* HWY_RESTRICT A, int64_t lda,
                       const float* HWY_RESTRICT B, int64_t ldb, float* HWY_RESTRICT C, int64_t ldc, float alpha,
                       bool acc) {
  const hn::ScalableTag<float> d;
  const int64_t L = int64_t(hn::Lanes(d));
  using V = hn::Vec<decltype(d)>;
  V c[MR][NR];
  for (int r = 0; r < MR; ++r)
    for (int s = 0; s < NR; ++s) c[r][s] = hn::Zero(d);
  int64_t k = 0;
  for (; k + L <= K; k += L) {
    V bv[NR];
    for (int s = 0; s < NR; ++s) bv[s] = hn::LoadU(d, B + (j + s) * ldb + k);
    for (int r = 0; r < MR; ++r) {
      const V av = hn::LoadU(d, A + (i + r) * lda + k);
      for (int s = 0; s < NR; ++s) c[r][s] = hn::MulAdd(av, bv[s], c[r][s]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int s = 0; s < NR; ++s) {
      float v = hn::GetLane(hn::SumOfLanes(d, c[r][s]));
      for (int64_t kk = k; kk < K; ++kk) v = std::fma(A[(i + r) * lda + kk], B[(j + s) * ldb + kk], v);
      store_out(C + (i + r) * ldc + j + s, v, alpha, acc);
    }
}

template <int MR>
HWY_INLINE void NtRow(int64_t i, int64_t j0, int64_t j1, int64_t K, const float* A, int64_t lda, const float* B,
                      int64_t ldb, float* C, int64_t ldc, float alpha, bool acc) {
  int64_t j = j0;
  for (; j + 4 <= j1; j += 4) NtTile<MR, 4>(i, j, K, A, lda, B, ldb, C, ldc, alpha, acc);
  for (; j < j1; ++j) NtTile<MR, 1>(i, j, K, A, lda, B, ldb, C, ldc, alpha, acc);
}

void NtBlock(int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t K, const float* A, int64_t lda, const float* B,
             int64_t ldb, float* C, int64_t ldc, float alpha, bool acc) {
  int64_t i = i0;
  for (; i + 4 <= i1; i += 4) NtRow<4>(i, j0, j1, K, A, lda, B, ldb, C, ldc, alpha, acc);
  for (; i < i1; ++i) NtRow<1>(i, j0, j1, K, A, lda, B, ldb, C, ldc, alpha, acc);
}
#endif

const char* TargetName() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace mcpm::train
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace mcpm::train {

HWY_EXPORT(NnBlock);
HWY_EXPORT(NtBlock);
HWY_EXPORT(VecLanes);
HWY_EXPORT(TargetName);

namespace {

// Splits the (row block x column block) grid of C into tasks in a fixed order and hands each
// thread a contiguous range of tasks.
template <class F>
void run_blocks(int64_t M, int64_t N, int64_t mc, int64_t nc, int64_t work, ThreadPool* pool, F&& f) {
  const int64_t n_mb = (M + mc - 1) / mc, n_nb = (N + nc - 1) / nc, n_tasks = n_mb * n_nb;
  auto task = [&](int64_t t) {
    const int64_t jb = t / n_mb, ib = t % n_mb;  // column block outer: the B panel stays hot
    f(ib * mc, std::min(M, (ib + 1) * mc), jb * nc, std::min(N, (jb + 1) * nc));
  };
  // Small products run on the calling thread: waking the pool costs more than it saves.
  if (!pool || pool->size() == 1 || n_tasks == 1 || work < (int64_t(1) << 18)) {
    for (int64_t t = 0; t < n_tasks; ++t) task(t);
    return;
  }
  pool->parallel_for(n_tasks, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) task(t);
  });
}

}  // namespace

void gemm_nn(int64_t M, int64_t N, int64_t K, const float* A, int64_t a_rs, int64_t a_cs, const float* B, int64_t ldb,
             float* C, int64_t ldc, float alpha, bool accumulate, ThreadPool* pool) {
  if (M <= 0 || N <= 0) return;
  const int64_t L = int64_t(HWY_DYNAMIC_DISPATCH(VecLanes)());
  const int64_t nc = std::max<int64_t>(2 * L, 64);
  const int64_t mc = 48;
  // k is cut into chunks so that a chunk of the B panel (kc x nc) stays in L1/L2; chunk c > 0 adds
  // onto what chunk c-1 stored (still one fixed order per element).
  const int64_t kc = 256;
  run_blocks(M, N, mc, nc, M * N * std::max<int64_t>(K, 1), pool, [&](int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    if (K <= 0) {
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t j = j0; j < j1; ++j) C[i * ldc + j] = accumulate ? C[i * ldc + j] : 0.0f;
      return;
    }
    for (int64_t k0 = 0; k0 < K; k0 += kc)
      HWY_DYNAMIC_DISPATCH(NnBlock)(i0, i1, j0, j1, std::min(kc, K - k0), A + k0 * a_cs, a_rs, a_cs, B + k0 * ldb, ldb,
                                    C, ldc, alpha, accumulate || k0 > 0);
  });
}

void gemm_nt(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
             int64_t ldc, float alpha, bool accumulate, ThreadPool* pool) {
  if (M <= 0 || N <= 0) return;
  // ~32 KiB of B rows per block; row blocks of 64.
  const int64_t nc = std::max<int64_t>(4, std::min<int64_t>(256, (8192 / std::max<int64_t>(K, 1)) / 4 * 4));
  run_blocks(M, N, 64, nc, M * N * std::max<int64_t>(K, 1), pool, [&](int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    HWY_DYNAMIC_DISPATCH(NtBlock)(i0, i1, j0, j1, K, A, lda, B, ldb, C, ldc, alpha, accumulate);
  });
}

const char* gemm_target_name() { return HWY_DYNAMIC_DISPATCH(TargetName)(); }

namespace ref {

void gemm_nn(int64_t M, int64_t N, int64_t K, const float* A, int64_t a_rs, int64_t a_cs, const float* B, int64_t ldb,
             float* C, int64_t ldc, float alpha, bool accumulate) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0.0;
      for (int64_t k = 0; k < K; ++k) s += double(A[i * a_rs + k * a_cs]) * double(B[k * ldb + j]);
      float& c = C[i * ldc + j];
      c = float(double(alpha) * s + (accumulate ? double(c) : 0.0));
    }
}

void gemm_nt(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
             int64_t ldc, float alpha, bool accumulate) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0.0;
      for (int64_t k = 0; k < K; ++k) s += double(A[i * lda + k]) * double(B[j * ldb + k]);
      float& c = C[i * ldc + j];
      c = float(double(alpha) * s + (accumulate ? double(c) : 0.0));
    }
}

}  // namespace ref
}  // namespace mcpm::train
#endif  // HWY_ONCE
