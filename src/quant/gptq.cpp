#include "quant/gptq.h"

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/log.h"

namespace mcpm {

namespace {

using MatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// quant.py find_params for one row over columns [c0, c1) of w (row-major, ld): scale and zero.
struct Params {
  float scale = 1.0f;
  int32_t zero = 0;
};

Params find_params(const float* w, int64_t c0, int64_t c1, int bits, bool sym) {
  const int maxq = (1 << bits) - 1;
  float xmin = 0.0f, xmax = 0.0f;
  for (int64_t c = c0; c < c1; ++c) xmin = std::min(xmin, w[c]), xmax = std::max(xmax, w[c]);
  if (sym) {
    xmax = std::max(-xmin, xmax);
    if (xmin < 0) xmin = -xmax;
  }
  if (xmin == 0.0f && xmax == 0.0f) xmin = -1.0f, xmax = 1.0f;
  Params p;
  p.scale = (xmax - xmin) / float(maxq);
  p.zero = sym ? (maxq + 1) / 2 : int32_t(std::nearbyint(-xmin / p.scale));
  return p;
}

inline int32_t quant_code(float w, const Params& p, int maxq) {
  return int32_t(std::clamp(std::nearbyint(w / p.scale) + float(p.zero), 0.0f, float(maxq)));
}

}  // namespace

Hessian::Hessian(int64_t K) : K_(K), xtx_(size_t(K * K), 0.0) {}

void Hessian::add(const float* x, int64_t T, int64_t skip) {
  if (T <= skip) return;
  const int64_t n = T - skip;
  Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> X(x + skip * K_, n, K_);
  const MatD Xd = X.cast<double>();
  Eigen::Map<MatD> H(xtx_.data(), K_, K_);
  H.noalias() += Xd.transpose() * Xd;
  n_ += n;
}

std::vector<double> Hessian::matrix() const {
  std::vector<double> h(xtx_.size());
  const double f = n_ > 0 ? 2.0 / double(n_) : 0.0;
  for (size_t i = 0; i < h.size(); ++i) h[i] = f * xtx_[i];
  return h;
}

GptqResult rtn_quantize(const float* W, int64_t N, int64_t K, const GptqOptions& o) {
  const int64_t g = o.group > 0 ? o.group : K;
  MCPM_CHECK(K % g == 0, "rtn: K = {} is not a multiple of the group size {}", K, g);
  const int maxq = (1 << o.bits) - 1;
  GptqResult r;
  GptqLinear& q = r.q;
  q.bits = o.bits, q.N = N, q.K = K, q.G = K / g;
  q.q.resize(size_t(N * K));
  q.zero.resize(size_t(q.G * N));
  q.scale.resize(size_t(q.G * N));
  q.g_idx.resize(size_t(K));
  r.deq.resize(size_t(N * K));
  for (int64_t k = 0; k < K; ++k) q.g_idx[size_t(k)] = int32_t(k / g);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t gi = 0; gi < q.G; ++gi) {
      const Params p = find_params(W + n * K, gi * g, (gi + 1) * g, o.bits, o.sym);
      q.scale[size_t(gi * N + n)] = p.scale;
      q.zero[size_t(gi * N + n)] = p.zero;
      for (int64_t k = gi * g; k < (gi + 1) * g; ++k) {
        const int32_t c = quant_code(W[n * K + k], p, maxq);
        q.q[size_t(n * K + k)] = uint8_t(c);
        r.deq[size_t(n * K + k)] = p.scale * float(c - p.zero);
      }
    }
  return r;
}

GptqResult gptq_quantize(const float* W_in, int64_t N, int64_t K, std::vector<double> Hv, const GptqOptions& o) {
  const int64_t g = o.group > 0 ? o.group : K;
  MCPM_CHECK(K % g == 0, "gptq: K = {} is not a multiple of the group size {}", K, g);
  const int maxq = (1 << o.bits) - 1;
  const int64_t G = K / g;
  std::vector<float> W(W_in, W_in + N * K);  // working copy [N, K]
  Eigen::Map<MatD> H(Hv.data(), K, K);

  // Per-channel parameters are found once on the original weights (quantizer.find_params(W)).
  std::vector<Params> row_params;
  if (o.group <= 0)
    for (int64_t n = 0; n < N; ++n) row_params.push_back(find_params(W.data() + n * K, 0, K, o.bits, o.sym));
  // Dead inputs.
  for (int64_t k = 0; k < K; ++k)
    if (H(k, k) == 0.0) {
      H(k, k) = 1.0;
      for (int64_t n = 0; n < N; ++n) W[size_t(n * K + k)] = 0.0f;
    }
  // Static groups: parameters of every contiguous group of the (dead-zeroed) original columns.
  std::vector<Params> static_params;
  if (o.static_groups && o.group > 0)
    for (int64_t gi = 0; gi < G; ++gi)
      for (int64_t n = 0; n < N; ++n) static_params.push_back(find_params(W.data() + n * K, gi * g, (gi + 1) * g, o.bits, o.sym));
  // Act-order: columns by descending diag H (stable, like torch.argsort on ties is not; ours is deterministic).
  std::vector<int32_t> perm(static_cast<size_t>(K));
  std::iota(perm.begin(), perm.end(), 0);
  if (o.act_order) {
    std::stable_sort(perm.begin(), perm.end(), [&](int32_t a, int32_t b) { return H(a, a) > H(b, b); });
    std::vector<float> Wp(W.size());
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = 0; j < K; ++j) Wp[size_t(n * K + j)] = W[size_t(n * K + perm[size_t(j)])];
    W.swap(Wp);
    MatD Hp(K, K);
    for (int64_t i = 0; i < K; ++i)
      for (int64_t j = 0; j < K; ++j) Hp(i, j) = H(perm[size_t(i)], perm[size_t(j)]);
    H = Hp;
  }
  // Damping + inverse Cholesky factor; on failure the damping grows (as GPTQModel does).
  const double mean_diag = H.diagonal().mean();
  double damp = o.damp;
  MatD U;
  for (int attempt = 0;; ++attempt) {
    MatD Hd = H;
    Hd.diagonal().array() += damp * mean_diag;
    Eigen::LLT<MatD> llt(Hd);
    if (llt.info() == Eigen::Success) {
      const MatD Hinv = llt.solve(MatD::Identity(K, K));
      Eigen::LLT<MatD> llt2(Hinv);
      if (llt2.info() == Eigen::Success) {
        U = llt2.matrixU();
        break;
      }
    }
    MCPM_CHECK(attempt < 20, "gptq: the Hessian is not positive definite even with damping {}", damp);
    damp += 0.0025;
    MCPM_LOG_WARN("gptq: Cholesky failed, damping raised to {}", damp);
  }

  GptqResult r;
  r.damp_used = damp;
  GptqLinear& q = r.q;
  q.bits = o.bits, q.N = N, q.K = K, q.G = G;
  q.q.resize(size_t(N * K));
  q.zero.resize(size_t(G * N));
  q.scale.resize(size_t(G * N));
  q.g_idx.resize(size_t(K));
  std::vector<int32_t> codes_p(size_t(N * K));  // permuted order
  std::vector<Params> cur(static_cast<size_t>(N));
  if (o.group <= 0) cur = row_params;
  const int64_t B = o.block;
  std::vector<double> W1, Err1;
  for (int64_t i1 = 0; i1 < K; i1 += B) {
    const int64_t i2 = std::min(i1 + B, K), cnt = i2 - i1;
    W1.assign(size_t(N * cnt), 0.0);
    Err1.assign(size_t(N * cnt), 0.0);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = 0; j < cnt; ++j) W1[size_t(n * cnt + j)] = W[size_t(n * K + i1 + j)];
    for (int64_t i = 0; i < cnt; ++i) {
      const int64_t col = i1 + i;
      if (o.group > 0) {
        if (o.static_groups) {
          const int64_t gi = perm[size_t(col)] / g;
          for (int64_t n = 0; n < N; ++n) cur[size_t(n)] = static_params[size_t(gi * N + n)];
        } else if (col % g == 0) {
          // Reference quirk kept: parameters from the outer W, which has the earlier blocks'
          // updates but not this block's in-block ones (exact for g == block).
          for (int64_t n = 0; n < N; ++n) cur[size_t(n)] = find_params(W.data() + n * K, col, col + g, o.bits, o.sym);
          const int64_t gi = col / g;
          for (int64_t n = 0; n < N; ++n) {
            q.scale[size_t(gi * N + n)] = cur[size_t(n)].scale;
            q.zero[size_t(gi * N + n)] = cur[size_t(n)].zero;
          }
        }
      }
      const double d = U(col, col);
      for (int64_t n = 0; n < N; ++n) {
        const double w = W1[size_t(n * cnt + i)];
        const Params& p = cur[size_t(n)];
        const int32_t c = quant_code(float(w), p, maxq);
        codes_p[size_t(n * K + col)] = c;
        const double qv = double(p.scale) * double(c - p.zero);
        r.loss += (w - qv) * (w - qv) / (d * d) / 2.0;
        const double e = (w - qv) / d;
        Err1[size_t(n * cnt + i)] = e;
        for (int64_t j = i; j < cnt; ++j) W1[size_t(n * cnt + j)] -= e * U(col, i1 + j);
      }
    }
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = 0; j < cnt; ++j) W[size_t(n * K + i1 + j)] = float(W1[size_t(n * cnt + j)]);
    if (i2 < K) {  // W[:, i2:] -= Err1 U[i1:i2, i2:]
      Eigen::Map<const MatD> E(Err1.data(), N, cnt);
      const MatD upd = E * U.block(i1, i2, cnt, K - i2);
      for (int64_t n = 0; n < N; ++n)
        for (int64_t j = i2; j < K; ++j) W[size_t(n * K + j)] -= float(upd(n, j - i2));
    }
  }
  // Group parameters of static groups / per channel, and g_idx.
  if (o.group <= 0 || o.static_groups)
    for (int64_t gi = 0; gi < G; ++gi)
      for (int64_t n = 0; n < N; ++n) {
        const Params& p = o.group <= 0 ? row_params[size_t(n)] : static_params[size_t(gi * N + n)];
        q.scale[size_t(gi * N + n)] = p.scale;
        q.zero[size_t(gi * N + n)] = p.zero;
      }
  for (int64_t j = 0; j < K; ++j) {
    const int64_t k = perm[size_t(j)];
    q.g_idx[size_t(k)] = int32_t(o.group <= 0 ? 0 : (o.static_groups || !o.act_order) ? k / g : j / g);
  }
  // Un-permute the codes; dequantize with the parameters of each column's group.
  r.deq.resize(size_t(N * K));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < K; ++j) {
      const int64_t k = perm[size_t(j)];
      const int32_t c = codes_p[size_t(n * K + j)];
      q.q[size_t(n * K + k)] = uint8_t(c);
      const int64_t gi = q.g_idx[size_t(k)];
      r.deq[size_t(n * K + k)] = q.scale[size_t(gi * N + n)] * float(c - q.zero[size_t(gi * N + n)]);
    }
  return r;
}

}  // namespace mcpm
