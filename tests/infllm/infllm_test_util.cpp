#include "infllm_test_util.h"

#include <algorithm>
#include <cmath>
#include <set>

#include <fmt/format.h>

#include "core/rng.h"
#include "kernels/ref/ref.h"

namespace mcpm::test {

namespace {
constexpr float kNoise = 0.5f;       // per-token key noise
constexpr float kBlockBias = 1.5f;   // per-block key offset
constexpr int64_t kBlock = 64;
}  // namespace

InfllmParams shipped_params() { return InfllmParams{}; }

InfllmParams small_params(int64_t init, int64_t local, int64_t topk) {
  InfllmParams p;
  p.init_blocks = init;
  p.local_blocks = local;
  p.topk_total = topk + local;
  return p;
}

TestKv::TestKv(int64_t n_kv, int64_t d, int64_t cap, int64_t L, DType dt, uint64_t seed, bool duplicate_blocks) {
  k.assign(size_t(n_kv * cap * d) * dtype_size(dt), 0);
  v.assign(k.size(), 0);
  kv = KvLayer{k.data(), v.data(), dt, n_kv, d, cap};
  Rng rng(seed);
  const int64_t nb = (L + kBlock - 1) / kBlock;
  std::vector<float> bias(size_t(nb * n_kv * d));
  for (auto& x : bias) x = kBlockBias * (rng.uniform() * 2.0f - 1.0f);
  std::vector<float> kk(size_t(L * n_kv * d)), vv(kk.size()), noise(size_t(kBlock * n_kv * d));
  for (auto& x : noise) x = kNoise * (rng.uniform() * 2.0f - 1.0f);
  for (int64_t p = 0; p < L; ++p)
    for (int64_t g = 0; g < n_kv; ++g)
      for (int64_t i = 0; i < d; ++i) {
        const size_t o = size_t((p * n_kv + g) * d + i);
        if (duplicate_blocks) {
          kk[o] = noise[size_t(((p % kBlock) * n_kv + g) * d + i)];
        } else {
          kk[o] = kNoise * (rng.uniform() * 2.0f - 1.0f) + bias[size_t(((p / kBlock) * n_kv + g) * d + i)];
        }
        vv[o] = rng.uniform() * 2.0f - 1.0f;
      }
  ref::kv_store(kk.data(), vv.data(), L, 0, kv);
  vf.resize(vv.size());
  for (size_t i = 0; i < vv.size(); ++i) vf[i] = dt == DType::BF16 ? round_to_bf16(vv[i]) : vv[i];
}

TestCompressed::TestCompressed(const InfllmParams& p, int64_t n_kv, int64_t d, int64_t cap, DType dt) {
  c.dtype = dt;
  c.n_kv = n_kv;
  c.d = d;
  c.cap1 = p.n_fine(cap);
  c.cap2 = p.n_coarse(cap);
  c1.assign(size_t(std::max<int64_t>(1, n_kv * c.cap1 * d)) * dtype_size(dt), 0);
  c2.assign(size_t(std::max<int64_t>(1, n_kv * c.cap2 * d)) * dtype_size(dt), 0);
  c.c1 = c1.data();
  c.c2 = c2.data();
}

std::vector<float> test_queries(int64_t T, int64_t n_heads, int64_t d, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> q(size_t(T * n_heads * d));
  for (auto& x : q) x = 1.5f * (rng.uniform() * 2.0f - 1.0f);
  return q;
}

TestIndex::TestIndex(int64_t n_kv, int64_t T, int64_t width) : ids(size_t(n_kv * T * width), -7) {
  idx = BlockIndex{ids.data(), T, width};
}

std::string check_row(const int32_t* row, const InfllmParams& p, int64_t t, int64_t L, const std::vector<double>& score,
                      double rel_tol) {
  const int64_t qb = t / p.block_size, K = p.row_width(L), W = p.topk_total;
  std::set<int64_t> sel;
  int64_t n_valid = 0;
  for (int64_t k = 0; k < W; ++k) {
    if (row[k] < 0) {
      if (row[k] != -1) return fmt::format("entry {} is {} (not a block id or -1)", k, row[k]);
      continue;
    }
    if (k >= K) return fmt::format("entry {} = {} beyond the row width {}", k, row[k], K);
    if (k > 0 && (row[k - 1] < 0 || row[k - 1] >= row[k])) return fmt::format("ids not ascending before entry {}", k);
    if (row[k] > qb) return fmt::format("block {} is after the query block {}", row[k], qb);
    sel.insert(row[k]);
    ++n_valid;
  }
  if (n_valid != std::min(K, qb + 1)) return fmt::format("{} valid ids, expected min({}, {})", n_valid, K, qb + 1);
  int64_t n_forced = 0;
  for (int64_t b = 0; b <= qb; ++b) n_forced += p.forced(b, qb);
  if (n_forced <= K)
    for (int64_t b = 0; b <= qb; ++b)
      if (p.forced(b, qb) && !sel.count(b)) return fmt::format("forced block {} missing", b);
  double min_sel = INFINITY, max_unsel = -INFINITY;
  int64_t arg_sel = -1, arg_unsel = -1;
  for (int64_t b = 0; b <= qb; ++b) {
    if (p.forced(b, qb)) continue;
    const double s = score[size_t(b)];
    if (sel.count(b)) {
      if (s < min_sel) min_sel = s, arg_sel = b;
    } else if (s > max_unsel) {
      max_unsel = s, arg_unsel = b;
    }
  }
  if (arg_sel >= 0 && arg_unsel >= 0 && min_sel < max_unsel - rel_tol * std::fabs(max_unsel))
    return fmt::format("selected block {} scores {} < unselected block {} with {}", arg_sel, min_sel, arg_unsel, max_unsel);
  return "";
}

double max_abs_diff(const float* a, const float* b, size_t n) {
  double m = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double e = std::fabs(double(a[i]) - double(b[i]));
    m = std::isnan(e) ? INFINITY : std::max(m, e);
  }
  return m;
}

}  // namespace mcpm::test
