// CPU TrainBackend: fp32 everywhere, the project ThreadPool for parallelism, the Highway GEMMs of
// gemm.h for the backward products and attention. Work is always split over outputs (rows, columns
// or heads), never over a reduction, so results are identical for any thread count and from run to
// run. Jobs too small to pay for waking the pool run on the calling thread (par()).
//
// Linear forward: y = x W^T runs through the engine's own mcpm::cpu::matmul (exact fp32 activations),
// so the trainer's forward is the inference forward. CpuTrainOptions::engine_matmul = false runs it
// as x · (W^T) with gemm.h's broadcast kernel and a transposed copy of each weight (kept until
// weights_changed()); both are about equally fast here (docs/training.md).
//
// CpuTrainOptions::bf16_gemm: the three products of every linear layer go through the engine's bf16
// GEMM (AMX tiles or vdpbf16ps, fp32 accumulation, split over output columns only, so still
// deterministic for any thread count):
//   forward  y  = x W^T          weights: bf16 copy of W [N, K]     (cached until weights_changed())
//   dX       dx = dy W           weights: bf16 copy of W^T [K, N]   (cached likewise)
//   dW       dW += dy^T x        "activations" dy^T [N, R] fp32, "weights" x^T [K, R] bf16 (per call)
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cpu_ops.h"
#include "train/cpu_backend.h"
#include "train/gemm.h"

namespace mcpm::train {

namespace {

class CpuTrainBackend final : public TrainBackend {
 public:
  explicit CpuTrainBackend(const CpuTrainOptions& o)
      : pool_(o.n_threads > 0 ? o.n_threads : ThreadPool::default_threads()),
        engine_matmul_(o.engine_matmul),
        bf16_(o.bf16_gemm) {
    ctx_.pool = &pool_;
    ctx_.bf16_activations = false;
    ctx16_.pool = &pool_;
    ctx16_.bf16_activations = true;
    MCPM_CHECK(!bf16_ || cpu_bf16_gemm_kernel(),
               "--gemm-precision bf16 on the CPU needs AMX-BF16 or AVX512-BF16, which this CPU lacks "
               "(use --gemm-precision fp32)");
  }
  ~CpuTrainBackend() override {
    for (void* p : blocks_) std::free(p);
  }

  std::string describe() const override {
    if (bf16_)
      return fmt::format("cpu, bf16 linear products ({}), fp32 elsewhere ({} threads, gemm {})", cpu_bf16_gemm_kernel(),
                         pool_.size(), gemm_target_name());
    return fmt::format("cpu fp32 ({} threads, gemm {}, forward matmul: {})", pool_.size(), gemm_target_name(),
                       engine_matmul_ ? "engine cpu::matmul" : "train gemm");
  }
  int n_threads() const override { return pool_.size(); }

  void* allocate(size_t bytes) override {
    const size_t n = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, n);
    MCPM_CHECK(p, "trainer: out of memory allocating {} bytes", bytes);
    std::memset(p, 0, n);
    blocks_.push_back(p);
    return p;
  }
  void upload(void* dst, const void* src, size_t n) override { std::memcpy(dst, src, n); }
  void download(void* dst, const void* src, size_t n) override { std::memcpy(dst, src, n); }
  void zero(float* x, size_t n) override {
    par(int64_t(n), [&](int64_t b, int64_t e) { std::memset(x + b, 0, size_t(e - b) * 4); }, 1024);
  }
  void copy(float* dst, const float* src, size_t n) override {
    par(int64_t(n), [&](int64_t b, int64_t e) { std::memcpy(dst + b, src + b, size_t(e - b) * 4); }, 1024);
  }
  void weights_changed() override {
    for (auto& [_, t] : wt_) t.valid = false;
    for (auto& [_, t] : w16_) t.valid = false;
  }

  void embedding_forward(const int32_t* ids, int64_t R, const float* E, int64_t H, float scale, float* out) override {
    par(R, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const float* src = E + int64_t(ids[r]) * H;
        for (int64_t i = 0; i < H; ++i) out[r * H + i] = scale * src[i];
      }
    }, 1, H);
  }
  void embedding_backward(const int32_t* ids, int64_t R, const float* dout, int64_t H, float scale,
                          float* dE) override {
    // Columns are split over threads; each thread visits the rows in order (fixed summation order).
    par(H, [&](int64_t c0, int64_t c1) {
      for (int64_t r = 0; r < R; ++r) {
        float* dst = dE + int64_t(ids[r]) * H;
        for (int64_t i = c0; i < c1; ++i) dst[i] += scale * dout[r * H + i];
      }
    }, 16, R);
  }

  void rmsnorm_forward(const float* x, int64_t R, int64_t H, const float* w, float eps, float* out,
                       float* rstd) override {
    par(R, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const float* xr = x + r * H;
        double ss = 0.0;
        for (int64_t i = 0; i < H; ++i) ss += double(xr[i]) * xr[i];
        const float rs = float(1.0 / std::sqrt(ss / double(H) + double(eps)));
        rstd[r] = rs;
        for (int64_t i = 0; i < H; ++i) out[r * H + i] = xr[i] * rs * w[i];
      }
    }, 1, H);
  }
  void rmsnorm_backward(const float* dout, const float* x, const float* w, const float* rstd, int64_t R, int64_t H,
                        float* dx, float* dw) override {
    par(R, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const float* dy = dout + r * H;
        const float* xr = x + r * H;
        const float rs = rstd[r];
        double dot = 0.0;
        for (int64_t i = 0; i < H; ++i) dot += double(dy[i]) * w[i] * xr[i];
        const float k = float(dot * double(rs) * rs * rs / double(H));
        float* d = dx + r * H;
        for (int64_t i = 0; i < H; ++i) d[i] += rs * w[i] * dy[i] - xr[i] * k;
      }
    }, 1, H);
    par(H, [&](int64_t c0, int64_t c1) {
      for (int64_t r = 0; r < R; ++r) {
        const float rs = rstd[r];
        for (int64_t i = c0; i < c1; ++i) dw[i] += dout[r * H + i] * x[r * H + i] * rs;
      }
    }, 16, R);
  }

  void linear_forward(const float* x, int64_t R, const float* W, int64_t N, int64_t K, float* y, float alpha,
                      bool accumulate) override {
    if (bf16_) {
      cpu::matmul(ctx16_, x, R, Matrix{bf16_weight(W, N, K).w.data(), DType::BF16, N, K}, y, alpha, accumulate ? 1.0f : 0.0f);
      return;
    }
    if (engine_matmul_) {
      cpu::matmul(ctx_, x, R, Matrix{W, DType::F32, N, K}, y, alpha, accumulate ? 1.0f : 0.0f);
      return;
    }
    const float* wt = transposed(W, N, K);  // [K, N]
    gemm_nn(R, N, K, x, K, 1, wt, N, y, N, alpha, accumulate, &pool_);
  }
  void linear_backward_dx(const float* dy, int64_t R, const float* W, int64_t N, int64_t K, float alpha, float* dx,
                          bool accumulate) override {
    if (bf16_) {
      cpu::matmul(ctx16_, dy, R, Matrix{bf16_weight(W, N, K).wt.data(), DType::BF16, K, N}, dx, alpha,
                  accumulate ? 1.0f : 0.0f);
      return;
    }
    gemm_nn(R, K, N, dy, N, 1, W, K, dx, K, alpha, accumulate, &pool_);
  }
  void linear_backward_dw(const float* dy, const float* x, int64_t R, int64_t N, int64_t K, float alpha,
                          float* dW) override {
    if (bf16_) {
      dy_t_.resize(size_t(N * R));
      x_t_.resize(size_t(K * R));
      cpu::transpose(ctx_, dy, R, N, dy_t_.data());         // [N, R]
      cpu::transpose_to_bf16(ctx_, x, R, K, x_t_.data());  // [K, R]
      cpu::matmul(ctx16_, dy_t_.data(), N, Matrix{x_t_.data(), DType::BF16, K, R}, dW, alpha, 1.0f);
      return;
    }
    gemm_nn(N, K, R, dy, 1, N, x, K, dW, K, alpha, true, &pool_);
  }

  void rope_forward(float* x, int64_t B, int64_t T, int64_t nh, int64_t d, const float* cos,
                    const float* sin) override {
    rope(x, B, T, nh, d, cos, sin, 1.0f);
  }
  void rope_backward(float* dx, int64_t B, int64_t T, int64_t nh, int64_t d, const float* cos,
                     const float* sin) override {
    rope(dx, B, T, nh, d, cos, sin, -1.0f);
  }

  void attention_forward(const float* q, const float* k, const float* v, int64_t B, int64_t T, int64_t nh, int64_t nkv,
                         int64_t d, float scale, float* out, float* probs) override;
  void attention_backward(const float* dout, const float* q, const float* k, const float* v, const float* probs,
                          int64_t B, int64_t T, int64_t nh, int64_t nkv, int64_t d, float scale, float* dq, float* dk,
                          float* dv) override;

  void swiglu_forward(const float* g, const float* u, int64_t n, float* h) override {
    par(n, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) h[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
    }, 256);
  }
  void swiglu_backward(const float* dh, const float* g, const float* u, int64_t n, float* dg, float* du) override {
    par(n, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const float sg = 1.0f / (1.0f + std::exp(-g[i]));
        dg[i] = dh[i] * u[i] * sg * (1.0f + g[i] * (1.0f - sg));
        du[i] = dh[i] * g[i] * sg;
      }
    }, 256);
  }

  void cross_entropy(float* logits, const int32_t* targets, const float* weight, int64_t R, int64_t V,
                     float* loss) override {
    par(R, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        float* z = logits + r * V;
        if (weight[r] == 0.0f) {
          std::memset(z, 0, size_t(V) * 4);
          loss[r] = 0.0f;
          continue;
        }
        float mx = z[0];
        for (int64_t i = 1; i < V; ++i) mx = std::max(mx, z[i]);
        double sum = 0.0;
        for (int64_t i = 0; i < V; ++i) sum += std::exp(double(z[i] - mx));
        const double lse = double(mx) + std::log(sum);
        loss[r] = float(double(weight[r]) * (lse - double(z[targets[r]])));
        const float w = weight[r];
        for (int64_t i = 0; i < V; ++i) z[i] = w * float(std::exp(double(z[i]) - lse));
        z[targets[r]] -= w;
      }
    }, 1, V);
  }

  double sum_squares(const float* x, size_t n) override {
    constexpr size_t kChunk = 1 << 14;  // fixed chunks: the result depends only on n
    const size_t n_chunks = (n + kChunk - 1) / kChunk;
    std::vector<double> part(n_chunks, 0.0);
    par(int64_t(n_chunks), [&](int64_t b, int64_t e) {
      for (int64_t c = b; c < e; ++c) {
        double s = 0.0;
        for (size_t i = size_t(c) * kChunk; i < std::min(n, size_t(c + 1) * kChunk); ++i) s += double(x[i]) * x[i];
        part[size_t(c)] = s;
      }
    }, 1, int64_t(kChunk));
    double s = 0.0;
    for (double p : part) s += p;
    return s;
  }
  void scale(float* x, size_t n, float s) override {
    par(int64_t(n), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) x[i] *= s;
    }, 1024);
  }
  void adamw(float* p, const float* g, float* m, float* v, size_t n, float lr, float beta1, float beta2, float eps,
             float wd, int64_t t) override {
    const double bc1 = 1.0 - std::pow(double(beta1), double(t)), bc2 = 1.0 - std::pow(double(beta2), double(t));
    const float inv_bc1 = float(1.0 / bc1), inv_bc2 = float(1.0 / bc2);
    par(int64_t(n), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const float gi = g[i];
        m[i] = beta1 * m[i] + (1.0f - beta1) * gi;
        v[i] = beta2 * v[i] + (1.0f - beta2) * gi * gi;
        const float mh = m[i] * inv_bc1, vh = v[i] * inv_bc2;
        p[i] -= lr * (mh / (std::sqrt(vh) + eps) + wd * p[i]);
      }
    }, 1024);
  }

 private:
  struct Transposed {
    std::vector<float> data;  // [K, N]
    bool valid = false;
  };
  const float* transposed(const float* W, int64_t N, int64_t K) {
    Transposed& t = wt_[W];
    if (!t.valid) {
      t.data.resize(size_t(N * K));
      cpu::transpose(ctx_, W, N, K, t.data.data());
      t.valid = true;
    }
    return t.data.data();
  }

  struct Bf16Weight {
    std::vector<bf16_t> w;   // [N, K]
    std::vector<bf16_t> wt;  // [K, N]
    bool valid = false;
  };
  const Bf16Weight& bf16_weight(const float* W, int64_t N, int64_t K) {
    Bf16Weight& t = w16_[W];
    if (!t.valid) {
      t.w.resize(size_t(N * K));
      t.wt.resize(size_t(N * K));
      par(N * K, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) t.w[size_t(i)] = f32_to_bf16(W[i]);
      }, 1024);
      cpu::transpose_to_bf16(ctx_, W, N, K, t.wt.data());
      t.valid = true;
    }
    return t;
  }
  // sign +1: forward rotation; -1: its transpose (the backward).
  void rope(float* x, int64_t B, int64_t T, int64_t nh, int64_t d, const float* cos, const float* sin, float sign) {
    const int64_t half = d / 2;
    par(B * T, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t t = r % T;
        const float* c = cos + t * half;
        const float* s = sin + t * half;
        for (int64_t h = 0; h < nh; ++h) {
          float* v = x + (r * nh + h) * d;
          for (int64_t j = 0; j < half; ++j) {
            const float a = v[j], e = v[j + half], sj = sign * s[j];
            v[j] = a * c[j] - e * sj;
            v[j + half] = e * c[j] + a * sj;
          }
        }
      }
    }, 1, nh * d);
  }

  // pool_.parallel_for, but jobs of fewer than kMinParallel elements run on the calling thread.
  static constexpr int64_t kMinParallel = 1 << 14;
  template <class F>
  void par(int64_t n, F&& f, int64_t align = 1, int64_t cost_per_item = 1) {
    if (n <= 0) return;
    if (pool_.size() == 1 || n * cost_per_item < kMinParallel) {
      f(int64_t(0), n);
      return;
    }
    pool_.parallel_for(n, std::forward<F>(f), align);
  }

  ThreadPool pool_;
  bool engine_matmul_;
  bool bf16_;
  cpu::Context ctx_;    // fp32 activations (the exact path)
  cpu::Context ctx16_;  // bf16 activations: AMX / AVX512-BF16 GEMMs (bf16_)
  std::vector<void*> blocks_;
  std::unordered_map<const float*, Transposed> wt_;
  std::unordered_map<const float*, Bf16Weight> w16_;
  std::vector<float> dy_t_;   // [N, R] scratch of the bf16 dW product
  std::vector<bf16_t> x_t_;   // [K, R]
};

// Causal row blocks: rows [i0, i1) of a head only see keys [0, i1).
constexpr int64_t kAttnRowBlock = 64;

void CpuTrainBackend::attention_forward(const float* q, const float* k, const float* v, int64_t B, int64_t T,
                                        int64_t nh, int64_t nkv, int64_t d, float scale, float* out, float* probs) {
  const int64_t G = nh / nkv, qs = nh * d, ks = nkv * d;
  par(B * nh, [&](int64_t t0, int64_t t1) {
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t b = task / nh, h = task % nh, g = h / G;
      const float* qh = q + b * T * qs + h * d;
      const float* kg = k + b * T * ks + g * d;
      const float* vg = v + b * T * ks + g * d;
      float* P = probs + (b * nh + h) * T * T;
      float* oh = out + b * T * qs + h * d;
      for (int64_t i0 = 0; i0 < T; i0 += kAttnRowBlock) {
        const int64_t i1 = std::min(T, i0 + kAttnRowBlock);
        gemm_nt(i1 - i0, i1, d, qh + i0 * qs, qs, kg, ks, P + i0 * T, T, scale, false, nullptr);
        for (int64_t i = i0; i < i1; ++i) {
          float* row = P + i * T;
          float mx = row[0];
          for (int64_t j = 1; j <= i; ++j) mx = std::max(mx, row[j]);
          double sum = 0.0;
          for (int64_t j = 0; j <= i; ++j) sum += (row[j] = std::exp(row[j] - mx));
          const float inv = float(1.0 / sum);
          for (int64_t j = 0; j <= i; ++j) row[j] *= inv;
          for (int64_t j = i + 1; j < T; ++j) row[j] = 0.0f;
        }
        gemm_nn(i1 - i0, d, i1, P + i0 * T, T, 1, vg, ks, oh + i0 * qs, qs, 1.0f, false, nullptr);
      }
    }
  }, 1, T * T * d);
}

void CpuTrainBackend::attention_backward(const float* dout, const float* q, const float* k, const float* v,
                                         const float* probs, int64_t B, int64_t T, int64_t nh, int64_t nkv, int64_t d,
                                         float scale, float* dq, float* dk, float* dv) {
  const int64_t G = nh / nkv, qs = nh * d, ks = nkv * d;
  // One task per (sequence, kv head): it owns dk/dv of that head and dq of its G query heads.
  par(B * nkv, [&](int64_t t0, int64_t t1) {
    std::vector<float> dS(size_t(T * T));  // [T, T]
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t b = task / nkv, g = task % nkv;
      const float* kg = k + b * T * ks + g * d;
      const float* vg = v + b * T * ks + g * d;
      float* dkg = dk + b * T * ks + g * d;
      float* dvg = dv + b * T * ks + g * d;
      for (int64_t hh = 0; hh < G; ++hh) {
        const int64_t h = g * G + hh;
        const float* P = probs + (b * nh + h) * T * T;
        const float* doh = dout + b * T * qs + h * d;
        const float* qh = q + b * T * qs + h * d;
        float* dqh = dq + b * T * qs + h * d;
        for (int64_t i0 = 0; i0 < T; i0 += kAttnRowBlock) {
          const int64_t i1 = std::min(T, i0 + kAttnRowBlock);
          // dP = dO V^T (rows i0..i1, keys 0..i1)
          gemm_nt(i1 - i0, i1, d, doh + i0 * qs, qs, vg, ks, dS.data() + i0 * T, T, 1.0f, false, nullptr);
          for (int64_t i = i0; i < i1; ++i) {
            float* row = dS.data() + i * T;
            const float* p = P + i * T;
            double dot = 0.0;
            for (int64_t j = 0; j <= i; ++j) dot += double(p[j]) * row[j];
            const float fd = float(dot);
            for (int64_t j = 0; j <= i; ++j) row[j] = p[j] * (row[j] - fd);
            for (int64_t j = i + 1; j < T; ++j) row[j] = 0.0f;
          }
          // dQ = scale * dS K
          gemm_nn(i1 - i0, d, i1, dS.data() + i0 * T, T, 1, kg, ks, dqh + i0 * qs, qs, scale, false, nullptr);
        }
        // dK (+)= scale * dS^T Q;  dV (+)= P^T dO   (rows j, reduction over queries i >= j0 of the row
        // block: dS and P are zero above the diagonal, so the skipped terms are exact zeros)
        for (int64_t j0 = 0; j0 < T; j0 += kAttnRowBlock) {
          const int64_t m = std::min(T, j0 + kAttnRowBlock) - j0, n_i = T - j0;
          gemm_nn(m, d, n_i, dS.data() + j0 * T + j0, 1, T, qh + j0 * qs, qs, dkg + j0 * ks, ks, scale, hh > 0, nullptr);
          gemm_nn(m, d, n_i, P + j0 * T + j0, 1, T, doh + j0 * qs, qs, dvg + j0 * ks, ks, 1.0f, hh > 0, nullptr);
        }
      }
    }
  }, 1, 4 * G * T * T * d);
}

}  // namespace

const char* cpu_bf16_gemm_kernel() {
  cpu::Context c;
  c.bf16_activations = true;
  const cpu::MatmulPath p = cpu::matmul_path(c, DType::BF16, 64);
  if (p == cpu::MatmulPath::Amx) return "amx-bf16";
  if (p == cpu::MatmulPath::Avx512Bf16) return "avx512-bf16";
  return nullptr;
}

std::unique_ptr<TrainBackend> make_cpu_train_backend(const CpuTrainOptions& options) {
  return std::make_unique<CpuTrainBackend>(options);
}

std::unique_ptr<TrainBackend> make_cpu_train_backend(int n_threads) {
  CpuTrainOptions o;
  o.n_threads = n_threads;
  return make_cpu_train_backend(o);
}

}  // namespace mcpm::train
