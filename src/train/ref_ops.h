// Scalar reference forward and backward of every MiniCPM4 training op, templated on the number
// type: Real = double for the finite-difference tests, float as the oracle of the CPU backend.
// Plain loops, no threads. Shapes: R rows (= B*T tokens), row-major buffers. "+=" marks outputs
// that are accumulated into (gradients of shared inputs); everything else is overwritten.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace mcpm::train::ref {

// out[r, :] = scale * E[ids[r], :]      E [V, H], out [R, H]
template <class Real>
void embedding_forward(const int32_t* ids, int64_t R, const Real* E, int64_t H, Real scale, Real* out) {
  for (int64_t r = 0; r < R; ++r)
    for (int64_t i = 0; i < H; ++i) out[r * H + i] = scale * E[int64_t(ids[r]) * H + i];
}
// dE[ids[r], :] += scale * dout[r, :]
template <class Real>
void embedding_backward(const int32_t* ids, int64_t R, const Real* dout, int64_t H, Real scale, Real* dE) {
  for (int64_t r = 0; r < R; ++r)
    for (int64_t i = 0; i < H; ++i) dE[int64_t(ids[r]) * H + i] += scale * dout[r * H + i];
}

// out = x * rstd * w, rstd[r] = 1/sqrt(mean(x[r]^2) + eps)     x/out [R, H], w [H], rstd [R]
template <class Real>
void rmsnorm_forward(const Real* x, int64_t R, int64_t H, const Real* w, double eps, Real* out, Real* rstd) {
  for (int64_t r = 0; r < R; ++r) {
    double ss = 0.0;
    for (int64_t i = 0; i < H; ++i) ss += double(x[r * H + i]) * double(x[r * H + i]);
    const Real rs = Real(1.0 / std::sqrt(ss / double(H) + eps));
    rstd[r] = rs;
    for (int64_t i = 0; i < H; ++i) out[r * H + i] = x[r * H + i] * rs * w[i];
  }
}
// dx += rstd*w*dy - x * rstd^3/H * sum(dy*w*x);  dw += sum_r dy*x*rstd
template <class Real>
void rmsnorm_backward(const Real* dout, const Real* x, const Real* w, const Real* rstd, int64_t R, int64_t H, Real* dx,
                      Real* dw) {
  for (int64_t r = 0; r < R; ++r) {
    const Real rs = rstd[r];
    double dot = 0.0;
    for (int64_t i = 0; i < H; ++i) dot += double(dout[r * H + i]) * double(w[i]) * double(x[r * H + i]);
    const Real k = Real(dot * double(rs) * double(rs) * double(rs) / double(H));
    for (int64_t i = 0; i < H; ++i) {
      dx[r * H + i] += rs * w[i] * dout[r * H + i] - x[r * H + i] * k;
      dw[i] += dout[r * H + i] * x[r * H + i] * rs;
    }
  }
}

// y = alpha * x W^T (+ y)        x [R, K], W [N, K], y [R, N]
template <class Real>
void linear_forward(const Real* x, int64_t R, const Real* W, int64_t N, int64_t K, Real* y, Real alpha, bool accumulate) {
  for (int64_t r = 0; r < R; ++r)
    for (int64_t n = 0; n < N; ++n) {
      Real s = 0;
      for (int64_t k = 0; k < K; ++k) s += x[r * K + k] * W[n * K + k];
      y[r * N + n] = alpha * s + (accumulate ? y[r * N + n] : Real(0));
    }
}
// dx (+)= alpha * dy W;  dW += alpha * dy^T x
template <class Real>
void linear_backward(const Real* dy, const Real* x, int64_t R, const Real* W, int64_t N, int64_t K, Real alpha, Real* dx,
                     bool accumulate_dx, Real* dW) {
  for (int64_t r = 0; r < R; ++r)
    for (int64_t k = 0; k < K; ++k) {
      Real s = 0;
      for (int64_t n = 0; n < N; ++n) s += dy[r * N + n] * W[n * K + k];
      dx[r * K + k] = alpha * s + (accumulate_dx ? dx[r * K + k] : Real(0));
    }
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) {
      Real s = 0;
      for (int64_t r = 0; r < R; ++r) s += dy[r * N + n] * x[r * K + k];
      dW[n * K + k] += alpha * s;
    }
}

// Rotate-half RoPE in place on x [B, T, n_heads, d]; position of token t is t. cos/sin [>=T, d/2].
template <class Real>
void rope_forward(Real* x, int64_t B, int64_t T, int64_t n_heads, int64_t d, const float* cos, const float* sin) {
  const int64_t half = d / 2;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < n_heads; ++h) {
        Real* v = x + ((b * T + t) * n_heads + h) * d;
        for (int64_t j = 0; j < half; ++j) {
          const Real c = cos[t * half + j], s = sin[t * half + j], a = v[j], e = v[j + half];
          v[j] = a * c - e * s;
          v[j + half] = e * c + a * s;
        }
      }
}
// The transpose of the rotation, in place on the gradient.
template <class Real>
void rope_backward(Real* dx, int64_t B, int64_t T, int64_t n_heads, int64_t d, const float* cos, const float* sin) {
  const int64_t half = d / 2;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < n_heads; ++h) {
        Real* v = dx + ((b * T + t) * n_heads + h) * d;
        for (int64_t j = 0; j < half; ++j) {
          const Real c = cos[t * half + j], s = sin[t * half + j], a = v[j], e = v[j + half];
          v[j] = a * c + e * s;
          v[j + half] = e * c - a * s;
        }
      }
}

// Causal GQA attention. q/out [B, T, nh, d], k/v [B, T, nkv, d], probs [B, nh, T, T] (row i holds
// softmax weights over keys j <= i, zeros above the diagonal). Query head h reads kv head h/(nh/nkv).
template <class Real>
void attention_forward(const Real* q, const Real* k, const Real* v, int64_t B, int64_t T, int64_t nh, int64_t nkv,
                       int64_t d, Real scale, Real* out, Real* probs) {
  const int64_t G = nh / nkv;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < nh; ++h) {
      const int64_t g = h / G;
      Real* P = probs + (b * nh + h) * T * T;
      for (int64_t i = 0; i < T; ++i) {
        const Real* qi = q + ((b * T + i) * nh + h) * d;
        Real mx = -INFINITY;
        for (int64_t j = 0; j <= i; ++j) {
          const Real* kj = k + ((b * T + j) * nkv + g) * d;
          Real s = 0;
          for (int64_t e = 0; e < d; ++e) s += qi[e] * kj[e];
          P[i * T + j] = s * scale;
          mx = std::max(mx, P[i * T + j]);
        }
        Real sum = 0;
        for (int64_t j = 0; j <= i; ++j) sum += (P[i * T + j] = std::exp(P[i * T + j] - mx));
        for (int64_t j = 0; j <= i; ++j) P[i * T + j] /= sum;
        for (int64_t j = i + 1; j < T; ++j) P[i * T + j] = 0;
        Real* oi = out + ((b * T + i) * nh + h) * d;
        for (int64_t e = 0; e < d; ++e) {
          Real s = 0;
          for (int64_t j = 0; j <= i; ++j) s += P[i * T + j] * v[((b * T + j) * nkv + g) * d + e];
          oi[e] = s;
        }
      }
    }
}
// dq, dk, dv overwritten.
template <class Real>
void attention_backward(const Real* dout, const Real* q, const Real* k, const Real* v, const Real* probs, int64_t B,
                        int64_t T, int64_t nh, int64_t nkv, int64_t d, Real scale, Real* dq, Real* dk, Real* dv) {
  const int64_t G = nh / nkv;
  for (int64_t i = 0; i < B * T * nh * d; ++i) dq[i] = 0;
  for (int64_t i = 0; i < B * T * nkv * d; ++i) dk[i] = dv[i] = 0;
  std::vector<Real> dS(static_cast<size_t>(T));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < nh; ++h) {
      const int64_t g = h / G;
      const Real* P = probs + (b * nh + h) * T * T;
      for (int64_t i = 0; i < T; ++i) {
        const Real* doi = dout + ((b * T + i) * nh + h) * d;
        Real dot = 0;  // sum_j P_ij dP_ij
        for (int64_t j = 0; j <= i; ++j) {
          const Real* vj = v + ((b * T + j) * nkv + g) * d;
          Real dp = 0;
          for (int64_t e = 0; e < d; ++e) dp += doi[e] * vj[e];
          dS[size_t(j)] = dp;
          dot += P[i * T + j] * dp;
        }
        const Real* qi = q + ((b * T + i) * nh + h) * d;
        Real* dqi = dq + ((b * T + i) * nh + h) * d;
        for (int64_t j = 0; j <= i; ++j) {
          const Real ds = P[i * T + j] * (dS[size_t(j)] - dot) * scale;
          const Real* kj = k + ((b * T + j) * nkv + g) * d;
          Real* dkj = dk + ((b * T + j) * nkv + g) * d;
          Real* dvj = dv + ((b * T + j) * nkv + g) * d;
          for (int64_t e = 0; e < d; ++e) {
            dqi[e] += ds * kj[e];
            dkj[e] += ds * qi[e];
            dvj[e] += P[i * T + j] * doi[e];
          }
        }
      }
    }
}

template <class Real> Real silu(Real x) { return x / (Real(1) + std::exp(-x)); }

// h = silu(g) * u        g/u/h [n]
template <class Real>
void swiglu_forward(const Real* g, const Real* u, int64_t n, Real* h) {
  for (int64_t i = 0; i < n; ++i) h[i] = silu(g[i]) * u[i];
}
// dg = dh * u * silu'(g), du = dh * silu(g)   (overwritten)
template <class Real>
void swiglu_backward(const Real* dh, const Real* g, const Real* u, int64_t n, Real* dg, Real* du) {
  for (int64_t i = 0; i < n; ++i) {
    const Real sg = Real(1) / (Real(1) + std::exp(-g[i]));
    dg[i] = dh[i] * u[i] * sg * (Real(1) + g[i] * (Real(1) - sg));
    du[i] = dh[i] * g[i] * sg;
  }
}

// loss[r] = weight[r] * (logsumexp(z[r]) - z[r, target[r]]); logits [R, V] are replaced by
// dloss/dlogits = weight[r] * (softmax(z[r]) - onehot(target[r])). weight 0 = ignored row.
template <class Real>
void cross_entropy(Real* logits, const int32_t* targets, const Real* weight, int64_t R, int64_t V, Real* loss) {
  for (int64_t r = 0; r < R; ++r) {
    Real* z = logits + r * V;
    if (weight[r] == Real(0)) {  // ignored position: no loss, no gradient (target may be anything)
      for (int64_t i = 0; i < V; ++i) z[i] = 0;
      loss[r] = 0;
      continue;
    }
    Real mx = z[0];
    for (int64_t i = 1; i < V; ++i) mx = std::max(mx, z[i]);
    double sum = 0.0;
    for (int64_t i = 0; i < V; ++i) sum += std::exp(double(z[i] - mx));
    const double lse = double(mx) + std::log(sum);
    loss[r] = Real(double(weight[r]) * (lse - double(z[targets[r]])));
    for (int64_t i = 0; i < V; ++i) z[i] = weight[r] * Real(std::exp(double(z[i]) - lse));
    z[targets[r]] -= weight[r];
  }
}

// EAGLE feature regression (PyTorch SmoothL1Loss, beta 1, mean over the H features of a row):
// loss[r] = weight[r] * mean_h sl1(pred - target), sl1(d) = d^2/2 for |d| < 1 else |d| - 1/2;
// dpred[r, h] = weight[r] / H * clamp(pred - target, -1, 1)  (overwritten; zero where weight is 0).
template <class Real>
void smooth_l1(const Real* pred, const Real* target, const Real* weight, int64_t R, int64_t H, Real* loss, Real* dpred) {
  for (int64_t r = 0; r < R; ++r) {
    double sum = 0;
    for (int64_t h = 0; h < H; ++h) {
      const double d = double(pred[r * H + h]) - double(target[r * H + h]), a = d < 0 ? -d : d;
      sum += a < 1 ? 0.5 * d * d : a - 0.5;
      dpred[r * H + h] = Real(double(weight[r]) / double(H) * (d < -1 ? -1.0 : d > 1 ? 1.0 : d));
    }
    loss[r] = Real(double(weight[r]) * sum / double(H));
  }
}

// Soft cross-entropy against a target distribution given by its logits (a constant):
// loss[r] = weight[r] * -sum_v softmax(target[r])_v * log_softmax(logits[r])_v; logits [R, V] are
// replaced by dloss/dlogits = weight[r] * (softmax(logits[r]) - softmax(target[r])).
template <class Real>
void soft_cross_entropy(Real* logits, const Real* target, const Real* weight, int64_t R, int64_t V, Real* loss) {
  for (int64_t r = 0; r < R; ++r) {
    Real* z = logits + r * V;
    const Real* t = target + r * V;
    if (weight[r] == Real(0)) {
      for (int64_t i = 0; i < V; ++i) z[i] = 0;
      loss[r] = 0;
      continue;
    }
    double mz = double(z[0]), mt = double(t[0]);
    for (int64_t i = 1; i < V; ++i) mz = std::max(mz, double(z[i])), mt = std::max(mt, double(t[i]));
    double sz = 0, st = 0;
    for (int64_t i = 0; i < V; ++i) sz += std::exp(double(z[i]) - mz), st += std::exp(double(t[i]) - mt);
    const double lse_z = mz + std::log(sz), lse_t = mt + std::log(st), w = double(weight[r]);
    double ce = 0;
    for (int64_t i = 0; i < V; ++i) {
      const double pt = std::exp(double(t[i]) - lse_t), lpd = double(z[i]) - lse_z;
      ce -= pt * lpd;
      z[i] = Real(w * (std::exp(lpd) - pt));
    }
    loss[r] = Real(w * ce);
  }
}

}  // namespace mcpm::train::ref
