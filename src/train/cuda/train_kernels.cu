// CUDA training kernels (see train_kernels.h): fp32 element-wise and row-wise ops of the training
// forward/backward and the optimizer. Each one is the CPU TrainBackend's arithmetic (cpu_backend.cpp)
// with one thread per element or one block per row; tests/train/test_train_cuda.cpp compares them.
#include <cuda_runtime.h>

#include "kernels/cuda/device_utils.cuh"
#include "train/cuda/train_kernels.h"

namespace mcpm::train::cuda {

using ::mcpm::cuda::block_sum;
using ::mcpm::cuda::ceil_div;
using ::mcpm::cuda::kWarpSize;
using ::mcpm::cuda::warp_max;

namespace {

constexpr int kThreads = 256;

inline unsigned grid_for(int64_t n, int threads = kThreads) {
  return unsigned(std::min<int64_t>(ceil_div(n, threads), int64_t(1) << 20));
}

// Block-wide max (every thread gets it); scratch >= blockDim.x / 32 floats.
__device__ float block_max(float v, float* scratch) {
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize, n_warps = blockDim.x / kWarpSize;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float m = scratch[0];
  for (int w = 1; w < n_warps; ++w) m = fmaxf(m, scratch[w]);
  return m;
}

__global__ void embedding_forward_kernel(const int32_t* ids, int64_t R, const float* E, int64_t H, float scale,
                                         float* out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < R * H; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / H, c = i % H;
    out[i] = scale * E[int64_t(ids[r]) * H + c];
  }
}

__global__ void embedding_backward_kernel(const int32_t* ids, int64_t R, const float* dout, int64_t H, float scale,
                                          float* dE) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < R * H; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / H, c = i % H;
    atomicAdd(dE + int64_t(ids[r]) * H + c, scale * dout[i]);
  }
}

// One block per row.
__global__ void rmsnorm_forward_kernel(const float* x, int64_t H, const float* w, float eps, float* out, float* rstd) {
  __shared__ float scratch[kThreads / kWarpSize];
  const int64_t r = blockIdx.x;
  const float* xr = x + r * H;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < H; i += blockDim.x) ss += xr[i] * xr[i];
  ss = block_sum(ss, scratch);
  const float rs = rsqrtf(ss / float(H) + eps);
  if (threadIdx.x == 0) rstd[r] = rs;
  for (int64_t i = threadIdx.x; i < H; i += blockDim.x) out[r * H + i] = xr[i] * rs * w[i];
}

__global__ void rmsnorm_backward_dx_kernel(const float* dout, const float* x, const float* w, const float* rstd,
                                           int64_t H, float* dx) {
  __shared__ float scratch[kThreads / kWarpSize];
  const int64_t r = blockIdx.x;
  const float* dy = dout + r * H;
  const float* xr = x + r * H;
  const float rs = rstd[r];
  float dot = 0.0f;
  for (int64_t i = threadIdx.x; i < H; i += blockDim.x) dot += dy[i] * w[i] * xr[i];
  dot = block_sum(dot, scratch);
  const float k = dot * rs * rs * rs / float(H);
  for (int64_t i = threadIdx.x; i < H; i += blockDim.x) dx[r * H + i] += rs * w[i] * dy[i] - xr[i] * k;
}

// dw[c] += sum_r dout[r, c] * x[r, c] * rstd[r]. Block (32 columns x 8 row lanes) over a chunk of
// rows; the 8 partial sums are combined in shared memory, then one atomic per column and block.
constexpr int kDwRowsPerBlock = 256;
__global__ void rmsnorm_backward_dw_kernel(const float* dout, const float* x, const float* rstd, int64_t R, int64_t H,
                                           float* dw) {
  __shared__ float part[8][33];
  const int64_t c = blockIdx.x * 32 + threadIdx.x;
  const int64_t r0 = blockIdx.y * int64_t(kDwRowsPerBlock), r1 = min(R, r0 + kDwRowsPerBlock);
  float s = 0.0f;
  if (c < H)
    for (int64_t r = r0 + threadIdx.y; r < r1; r += 8) s += dout[r * H + c] * x[r * H + c] * rstd[r];
  part[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && c < H) {
    float t = 0.0f;
    for (int j = 0; j < 8; ++j) t += part[j][threadIdx.x];
    atomicAdd(dw + c, t);
  }
}

// One thread per rotated pair (row r = b*T + t, head h, index j < d/2).
__global__ void rope_kernel(float* x, int64_t BT, int64_t T, int64_t nh, int64_t d, const float* cos, const float* sin,
                            float sign) {
  const int64_t half = d / 2, n = BT * nh * half;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t j = i % half, rh = i / half, r = rh / nh, t = r % T;
    float* v = x + rh * d;
    const float c = cos[t * half + j], sj = sign * sin[t * half + j], a = v[j], e = v[j + half];
    v[j] = a * c - e * sj;
    v[j + half] = e * c + a * sj;
  }
}

// One block per row of one [T, T] matrix.
__global__ void causal_softmax_kernel(float* P, int64_t T) {
  __shared__ float scratch[kThreads / kWarpSize];
  const int64_t row = blockIdx.x, i = row % T;
  float* p = P + row * T;
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j <= i; j += blockDim.x) mx = fmaxf(mx, p[j]);
  mx = block_max(mx, scratch);
  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j <= i; j += blockDim.x) {
    const float e = __expf(p[j] - mx);
    p[j] = e;
    sum += e;
  }
  sum = block_sum(sum, scratch);
  const float inv = 1.0f / sum;
  for (int64_t j = threadIdx.x; j < T; j += blockDim.x) p[j] = j <= i ? p[j] * inv : 0.0f;
}

__global__ void causal_softmax_backward_kernel(const float* P, float* dP, int64_t T, float scale) {
  __shared__ float scratch[kThreads / kWarpSize];
  const int64_t row = blockIdx.x, i = row % T;
  const float* p = P + row * T;
  float* dp = dP + row * T;
  float dot = 0.0f;
  for (int64_t j = threadIdx.x; j <= i; j += blockDim.x) dot += p[j] * dp[j];
  dot = block_sum(dot, scratch);
  for (int64_t j = threadIdx.x; j < T; j += blockDim.x) dp[j] = j <= i ? scale * p[j] * (dp[j] - dot) : 0.0f;
}

__global__ void swiglu_forward_kernel(const float* g, const float* u, int64_t n, float* h) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    h[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

__global__ void swiglu_backward_kernel(const float* dh, const float* g, const float* u, int64_t n, float* dg,
                                       float* du) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float sg = 1.0f / (1.0f + expf(-g[i]));
    dg[i] = dh[i] * u[i] * sg * (1.0f + g[i] * (1.0f - sg));
    du[i] = dh[i] * g[i] * sg;
  }
}

// One block per row: loss = w * (lse - z[target]); z <- w * (softmax(z) - onehot(target)).
__global__ void cross_entropy_kernel(float* logits, const int32_t* targets, const float* weight, int64_t V,
                                     float* loss) {
  __shared__ float scratch[kThreads / kWarpSize];
  const int64_t r = blockIdx.x;
  float* z = logits + r * V;
  const float w = weight[r];
  if (w == 0.0f) {
    for (int64_t i = threadIdx.x; i < V; i += blockDim.x) z[i] = 0.0f;
    if (threadIdx.x == 0) loss[r] = 0.0f;
    return;
  }
  float mx = -INFINITY;
  for (int64_t i = threadIdx.x; i < V; i += blockDim.x) mx = fmaxf(mx, z[i]);
  mx = block_max(mx, scratch);
  float sum = 0.0f;
  for (int64_t i = threadIdx.x; i < V; i += blockDim.x) sum += expf(z[i] - mx);
  sum = block_sum(sum, scratch);
  const float lse = mx + logf(sum);
  const int32_t t = targets[r];
  const float zt = z[t];
  __syncthreads();  // every thread has read z[t] before it is overwritten
  if (threadIdx.x == 0) loss[r] = w * (lse - zt);
  for (int64_t i = threadIdx.x; i < V; i += blockDim.x) z[i] = w * expf(z[i] - lse) - (i == t ? w : 0.0f);
}

__global__ void sum_squares_partial_kernel(const float* x, size_t n, double* partial) {
  __shared__ double sh[kThreads];
  double s = 0.0;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    s += double(x[i]) * double(x[i]);
  sh[threadIdx.x] = s;
  __syncthreads();
  for (int o = kThreads / 2; o > 0; o /= 2) {
    if (threadIdx.x < o) sh[threadIdx.x] += sh[threadIdx.x + o];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[blockIdx.x] = sh[0];
}

__global__ void sum_partials_kernel(const double* partial, int n, double* result) {
  __shared__ double sh[kThreads];
  double s = 0.0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) s += partial[i];
  sh[threadIdx.x] = s;
  __syncthreads();
  for (int o = kThreads / 2; o > 0; o /= 2) {
    if (threadIdx.x < o) sh[threadIdx.x] += sh[threadIdx.x + o];
    __syncthreads();
  }
  if (threadIdx.x == 0) *result = sh[0];
}

__global__ void scale_kernel(float* x, size_t n, float f) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) x[i] *= f;
}

__global__ void adamw_kernel(float* p, const float* g, float* m, float* v, size_t n, float lr, float beta1,
                             float beta2, float eps, float wd, float inv_bc1, float inv_bc2) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const float gi = g[i];
    const float mi = beta1 * m[i] + (1.0f - beta1) * gi;
    const float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] -= lr * ((mi * inv_bc1) / (sqrtf(vi * inv_bc2) + eps) + wd * p[i]);
  }
}

struct PtrArgs {
  AttnPtrOperand op[3];
  void** out[3];  // device pointer arrays (cuBLAS takes void* elements)
};

__global__ void fill_pointers_kernel(PtrArgs a, int64_t B, int64_t nh, int64_t nkv, bool per_kv_head, int64_t member) {
  const int64_t G = nh / nkv, heads = per_kv_head ? nkv : nh, n = B * heads;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = i / heads, x = i % heads;
    const int64_t qh = per_kv_head ? x * G + member : x, kh = per_kv_head ? x : x / G;
    for (int j = 0; j < 3; ++j)
      a.out[j][i] = const_cast<float*>(a.op[j].base + b * a.op[j].stride_b + (a.op[j].kv ? kh : qh) * a.op[j].stride_h);
  }
}

}  // namespace

#define MCPM_TRAIN_LAUNCH_CHECK(name) MCPM_CUDA_CHECK_LAUNCH(name)

void embedding_forward(cudaStream_t s, const int32_t* ids, int64_t R, const float* E, int64_t H, float scale,
                       float* out) {
  if (R * H <= 0) return;  // a zero-block grid is a launch error; the CPU backend does nothing
  embedding_forward_kernel<<<grid_for(R * H), kThreads, 0, s>>>(ids, R, E, H, scale, out);
  MCPM_TRAIN_LAUNCH_CHECK("train embedding_forward");
}
void embedding_backward(cudaStream_t s, const int32_t* ids, int64_t R, const float* dout, int64_t H, float scale,
                        float* dE) {
  if (R * H <= 0) return;
  embedding_backward_kernel<<<grid_for(R * H), kThreads, 0, s>>>(ids, R, dout, H, scale, dE);
  MCPM_TRAIN_LAUNCH_CHECK("train embedding_backward");
}
void rmsnorm_forward(cudaStream_t s, const float* x, int64_t R, int64_t H, const float* w, float eps, float* out,
                     float* rstd) {
  if (R <= 0) return;
  rmsnorm_forward_kernel<<<unsigned(R), kThreads, 0, s>>>(x, H, w, eps, out, rstd);
  MCPM_TRAIN_LAUNCH_CHECK("train rmsnorm_forward");
}
void rmsnorm_backward(cudaStream_t s, const float* dout, const float* x, const float* w, const float* rstd, int64_t R,
                      int64_t H, float* dx, float* dw) {
  if (R <= 0 || H <= 0) return;
  rmsnorm_backward_dx_kernel<<<unsigned(R), kThreads, 0, s>>>(dout, x, w, rstd, H, dx);
  MCPM_TRAIN_LAUNCH_CHECK("train rmsnorm_backward dx");
  const dim3 grid(unsigned(ceil_div(H, 32)), unsigned(ceil_div(R, kDwRowsPerBlock)));
  rmsnorm_backward_dw_kernel<<<grid, dim3(32, 8), 0, s>>>(dout, x, rstd, R, H, dw);
  MCPM_TRAIN_LAUNCH_CHECK("train rmsnorm_backward dw");
}
void rope(cudaStream_t s, float* x, int64_t B, int64_t T, int64_t nh, int64_t d, const float* cos, const float* sin,
          float sign) {
  if (B * T * nh * (d / 2) <= 0) return;
  rope_kernel<<<grid_for(B * T * nh * (d / 2)), kThreads, 0, s>>>(x, B * T, T, nh, d, cos, sin, sign);
  MCPM_TRAIN_LAUNCH_CHECK("train rope");
}
void causal_softmax(cudaStream_t s, float* P, int64_t n_mats, int64_t T) {
  if (n_mats * T <= 0) return;
  causal_softmax_kernel<<<unsigned(n_mats * T), kThreads, 0, s>>>(P, T);
  MCPM_TRAIN_LAUNCH_CHECK("train causal_softmax");
}
void causal_softmax_backward(cudaStream_t s, const float* P, float* dP, int64_t n_mats, int64_t T, float scale) {
  if (n_mats * T <= 0) return;
  causal_softmax_backward_kernel<<<unsigned(n_mats * T), kThreads, 0, s>>>(P, dP, T, scale);
  MCPM_TRAIN_LAUNCH_CHECK("train causal_softmax_backward");
}
void swiglu_forward(cudaStream_t s, const float* g, const float* u, int64_t n, float* h) {
  if (n <= 0) return;
  swiglu_forward_kernel<<<grid_for(n), kThreads, 0, s>>>(g, u, n, h);
  MCPM_TRAIN_LAUNCH_CHECK("train swiglu_forward");
}
void swiglu_backward(cudaStream_t s, const float* dh, const float* g, const float* u, int64_t n, float* dg, float* du) {
  if (n <= 0) return;
  swiglu_backward_kernel<<<grid_for(n), kThreads, 0, s>>>(dh, g, u, n, dg, du);
  MCPM_TRAIN_LAUNCH_CHECK("train swiglu_backward");
}
void cross_entropy(cudaStream_t s, float* logits, const int32_t* targets, const float* weight, int64_t R, int64_t V,
                   float* loss) {
  if (R <= 0 || V <= 0) return;
  cross_entropy_kernel<<<unsigned(R), kThreads, 0, s>>>(logits, targets, weight, V, loss);
  MCPM_TRAIN_LAUNCH_CHECK("train cross_entropy");
}
void sum_squares(cudaStream_t s, const float* x, size_t n, double* partial, double* result) {
  sum_squares_partial_kernel<<<kSumSquaresBlocks, kThreads, 0, s>>>(x, n, partial);
  MCPM_TRAIN_LAUNCH_CHECK("train sum_squares");
  sum_partials_kernel<<<1, kThreads, 0, s>>>(partial, kSumSquaresBlocks, result);
  MCPM_TRAIN_LAUNCH_CHECK("train sum_squares (partials)");
}
void scale(cudaStream_t s, float* x, size_t n, float factor) {
  if (n == 0) return;
  scale_kernel<<<grid_for(int64_t(n)), kThreads, 0, s>>>(x, n, factor);
  MCPM_TRAIN_LAUNCH_CHECK("train scale");
}
void adamw(cudaStream_t s, float* p, const float* g, float* m, float* v, size_t n, float lr, float beta1, float beta2,
           float eps, float wd, float inv_bc1, float inv_bc2) {
  if (n == 0) return;
  adamw_kernel<<<grid_for(int64_t(n)), kThreads, 0, s>>>(p, g, m, v, n, lr, beta1, beta2, eps, wd, inv_bc1, inv_bc2);
  MCPM_TRAIN_LAUNCH_CHECK("train adamw");
}
void fill_attention_pointers(cudaStream_t s, const AttnPtrOperand ops[3], void** const out[3], int64_t B, int64_t nh,
                             int64_t nkv, bool per_kv_head, int64_t member) {
  PtrArgs a;
  for (int j = 0; j < 3; ++j) {
    a.op[j] = ops[j];
    a.out[j] = out[j];
  }
  const int64_t n = B * (per_kv_head ? nkv : nh);
  if (n <= 0) return;
  fill_pointers_kernel<<<grid_for(n), kThreads, 0, s>>>(a, B, nh, nkv, per_kv_head, member);
  MCPM_TRAIN_LAUNCH_CHECK("train fill_attention_pointers");
}

}  // namespace mcpm::train::cuda
