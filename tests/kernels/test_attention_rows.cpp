// Batch invariance and tree masks (model/batch.h):
// - cpu::attention_tree against ref::attention_tree on random trees (GQA 1/2/8, head dims 64/128,
//   bf16/f32 caches, prefixes that cross the decode chunk sizes, 1-3 threads, every Highway target);
// - bit-exact invariance: a tree row equals a one-token decode over the compacted cache (prefix +
//   its ancestors, contiguous); a row-invariant causal call of T rows equals T one-token decodes; a
//   decode row does not depend on the thread count; row-invariant matmul / gate_up rows equal one-row
//   calls. These are what make speculative verification give plain greedy decoding token for token.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "common/test_util.h"
#include "core/rng.h"
#include "kernel_test_util.h"
#include "kernels/ref/ref.h"

namespace mcpm::test {
namespace {

struct Cache {
  std::vector<char> k, v;
  KvLayer kv;
  std::vector<float> kf, vf;  // the values written, [rows, n_kv, d]
  Cache(int64_t n_kv, int64_t d, int64_t cap, int64_t rows, DType dt, uint64_t seed) {
    k.resize(size_t(n_kv * cap * d) * dtype_size(dt));
    v.resize(k.size());
    kv = KvLayer{k.data(), v.data(), dt, n_kv, d, cap};
    kf = random_floats(size_t(rows * n_kv * d), seed, -2.0f, 2.0f);
    vf = random_floats(size_t(rows * n_kv * d), seed + 1);
    ref::kv_store(kf.data(), vf.data(), rows, 0, kv);
  }
};

// A random parent-first tree of m nodes: parent[i] < i (node 0 is the root); anc[i] has bit j set for
// every ancestor-or-self j of i.
std::vector<uint64_t> random_tree(int64_t m, uint64_t seed, std::vector<int64_t>* parent_out = nullptr) {
  Rng rng(seed);
  std::vector<uint64_t> anc(static_cast<size_t>(m));
  std::vector<int64_t> parent(static_cast<size_t>(m), -1);
  for (int64_t i = 0; i < m; ++i) {
    if (i > 0) parent[size_t(i)] = int64_t(rng.next_u64() % uint64_t(i));
    anc[size_t(i)] = (i > 0 ? anc[size_t(parent[size_t(i)])] : 0) | (uint64_t(1) << i);
  }
  if (parent_out) *parent_out = parent;
  return anc;
}

std::vector<char> scratch_for(int64_t n_heads, int64_t d, int64_t cap, int nt) {
  return std::vector<char>(cpu::attention_scratch_bytes(64, n_heads, d, cap, nt) + 64);
}

TEST(KernelsAttentionTree, MatchesReference) {
  struct C { int64_t n_kv, G, d, row0, m; };
  const C cases[] = {{2, 8, 64, 0, 1},   {2, 8, 64, 0, 7},    {2, 8, 64, 5, 13},  {1, 1, 64, 127, 3},
                     {2, 2, 128, 300, 64}, {2, 8, 64, 2040, 12}, {3, 2, 64, 1000, 33}, {1, 8, 128, 129, 2}};
  for_each_hwy_target([&](const std::string&) {
    for (const C& c : cases)
      for (DType dt : {DType::BF16, DType::F32})
        for (int nt : {1, 2, 3}) {
          SCOPED_TRACE(::testing::Message() << "n_kv=" << c.n_kv << " G=" << c.G << " d=" << c.d << " row0=" << c.row0
                                            << " m=" << c.m << " " << dtype_name(dt) << " threads=" << nt);
          const int64_t nh = c.n_kv * c.G, cap = c.row0 + c.m + 5;
          Cache cache(c.n_kv, c.d, cap, c.row0 + c.m, dt, uint64_t(c.row0 * 31 + c.m));
          const std::vector<uint64_t> mask = random_tree(c.m, uint64_t(c.m * 7 + c.row0));
          const std::vector<float> q = random_floats(size_t(c.m * nh * c.d), 99 + uint64_t(c.m), -2.0f, 2.0f);
          const float scale = float(1.0 / std::sqrt(double(c.d)));
          std::vector<float> want(q.size()), got(q.size(), NAN);
          ref::attention_tree(q.data(), c.m, nh, c.row0, mask.data(), cache.kv, scale, want.data());
          std::vector<char> sc = scratch_for(nh, c.d, cap, nt);
          cpu::attention_tree(make_ctx(nt), q.data(), c.m, nh, c.row0, mask.data(), cache.kv, scale, got.data(),
                              sc.data() + 3);
          double vmax = 0.0, qmax = 0.0, kmax = 0.0, worst = 0.0;
          for (float x : cache.vf) vmax = std::max(vmax, double(std::fabs(x)));
          for (float x : cache.kf) kmax = std::max(kmax, double(std::fabs(x)));
          for (float x : q) qmax = std::max(qmax, double(std::fabs(x)));
          for (size_t i = 0; i < got.size(); ++i) {
            const double e = std::fabs(double(got[i]) - want[i]);
            worst = std::isnan(e) ? INFINITY : std::max(worst, e);
          }
          const double smax = scale * double(c.d) * qmax * kmax;  // bound of |score| sums
          EXPECT_LE(worst, vmax * (1e-5 + 8 * 5.96e-8 * smax));
        }
  });
}

// Copies rows `rows` (in order) of every kv head of `src` into rows 0.. of `dst`.
void gather_rows(const KvLayer& src, const std::vector<int64_t>& rows, const KvLayer& dst) {
  const size_t rb = size_t(src.d) * dtype_size(src.dtype);
  for (int64_t g = 0; g < src.n_kv; ++g)
    for (size_t j = 0; j < rows.size(); ++j) {
      std::memcpy(static_cast<char*>(dst.k) + (size_t(g * dst.capacity) + j) * rb,
                  static_cast<const char*>(src.k) + size_t(g * src.capacity + rows[j]) * rb, rb);
      std::memcpy(static_cast<char*>(dst.v) + (size_t(g * dst.capacity) + j) * rb,
                  static_cast<const char*>(src.v) + size_t(g * src.capacity + rows[j]) * rb, rb);
    }
}

TEST(KernelsAttentionTree, RowsEqualDecodeOverTheCompactedCacheBitForBit) {
  for_each_hwy_target([&](const std::string&) {
    for (int64_t row0 : {0, 3, 200, 1100, 2047})
      for (DType dt : {DType::BF16, DType::F32}) {
        const int64_t n_kv = 2, G = 4, d = 64, nh = n_kv * G, m = 20, cap = row0 + m + 1;
        SCOPED_TRACE(::testing::Message() << "row0=" << row0 << " " << dtype_name(dt));
        Cache cache(n_kv, d, cap, row0 + m, dt, uint64_t(row0 + 1));
        std::vector<int64_t> parent;
        const std::vector<uint64_t> mask = random_tree(m, uint64_t(row0 + 5), &parent);
        const std::vector<float> q = random_floats(size_t(m * nh * d), uint64_t(row0 + 9), -2.0f, 2.0f);
        std::vector<float> tree(q.size());
        std::vector<char> sc = scratch_for(nh, d, cap, 2);
        cpu::attention_tree(make_ctx(2), q.data(), m, nh, row0, mask.data(), cache.kv, 0.125f, tree.data(), sc.data());
        std::vector<char> lk(cache.k.size()), lv(cache.v.size());
        const KvLayer lin{lk.data(), lv.data(), dt, n_kv, d, cap};
        for (int64_t i = 0; i < m; ++i) {
          std::vector<int64_t> rows;
          for (int64_t j = 0; j < row0; ++j) rows.push_back(j);
          std::vector<int64_t> path;
          for (int64_t a = i; a >= 0; a = parent[size_t(a)]) path.insert(path.begin(), row0 + a);
          rows.insert(rows.end(), path.begin(), path.end());
          gather_rows(cache.kv, rows, lin);
          std::vector<float> dec(static_cast<size_t>(nh * d));
          for (int nt : {1, 2, 3}) {
            std::vector<char> sc2 = scratch_for(nh, d, cap, nt);
            cpu::attention(make_ctx(nt), q.data() + i * nh * d, 1, nh, int64_t(rows.size()) - 1, lin, 0.125f, dec.data(),
                           sc2.data());
            ASSERT_EQ(0, std::memcmp(dec.data(), tree.data() + i * nh * d, dec.size() * 4))
                << "tree node " << i << " (depth " << path.size() - 1 << "), threads " << nt;
          }
        }
      }
  });
}

TEST(KernelsAttentionTree, RowInvariantCausalRowsEqualOneTokenDecodes) {
  for (int64_t pos0 : {0, 7, 129, 1500})
    for (int64_t T : {2, 9, 40}) {
      const int64_t n_kv = 2, G = 8, d = 128, nh = n_kv * G, cap = pos0 + T;
      Cache cache(n_kv, d, cap, cap, DType::BF16, uint64_t(pos0 * 3 + T));
      const std::vector<float> q = random_floats(size_t(T * nh * d), uint64_t(T), -2.0f, 2.0f);
      std::vector<float> all(q.size()), one(static_cast<size_t>(nh * d));
      std::vector<char> sc = scratch_for(nh, d, cap, 3);
      cpu::Context ctx = make_ctx(3);
      ctx.row_invariant = true;
      cpu::attention(ctx, q.data(), T, nh, pos0, cache.kv, 0.1f, all.data(), sc.data());
      for (int64_t t = 0; t < T; ++t) {
        cpu::attention(make_ctx(1), q.data() + t * nh * d, 1, nh, pos0 + t, cache.kv, 0.1f, one.data(), sc.data());
        ASSERT_EQ(0, std::memcmp(one.data(), all.data() + t * nh * d, one.size() * 4)) << "pos0 " << pos0 << " row " << t;
      }
    }
}

TEST(KernelsAttentionTree, BadMasksAreRejected) {
  Cache cache(1, 64, 16, 16, DType::F32, 1);
  std::vector<float> q(2 * 64), out(2 * 64);
  std::vector<char> sc = scratch_for(1, 64, 16, 1);
  const uint64_t no_self[2] = {1, 1}, later[2] = {3, 3};
  MCPM_EXPECT_ERROR(cpu::attention_tree(make_ctx(1), q.data(), 2, 1, 4, no_self, cache.kv, 1.0f, out.data(), sc.data()),
                    "tree mask of token 1");
  MCPM_EXPECT_ERROR(cpu::attention_tree(make_ctx(1), q.data(), 2, 1, 4, later, cache.kv, 1.0f, out.data(), sc.data()),
                    "tree mask of token 0");
}

TEST(KernelsMatmulRowInvariant, RowsEqualOneRowCalls) {
  for (DType dt : {DType::BF16, DType::F32})
    for (int64_t T : {2, 9, 13, 33}) {
      const int64_t N = 77, K = 200;
      TestMatrix W(N, K, dt, uint64_t(T)), U(N, K, dt, uint64_t(T) + 1);
      const std::vector<float> x = random_floats(size_t(T * K), 5 + uint64_t(T));
      std::vector<float> y(static_cast<size_t>(T * N)), y1(static_cast<size_t>(N)), g(static_cast<size_t>(T * N)), g1(static_cast<size_t>(N)), tmp(static_cast<size_t>(T * N));
      cpu::Context ctx = make_ctx(3);
      ctx.row_invariant = true;
      cpu::matmul(ctx, x.data(), T, W.m, y.data(), 0.7f, 0.0f);
      cpu::gate_up_silu(ctx, x.data(), T, W.m, U.m, g.data(), tmp.data());
      for (int64_t t = 0; t < T; ++t) {
        cpu::matmul(make_ctx(2), x.data() + t * K, 1, W.m, y1.data(), 0.7f, 0.0f);
        cpu::gate_up_silu(make_ctx(1), x.data() + t * K, 1, W.m, U.m, g1.data(), tmp.data());
        ASSERT_EQ(0, std::memcmp(y1.data(), y.data() + t * N, size_t(N) * 4)) << dtype_name(dt) << " T " << T << " row " << t;
        ASSERT_EQ(0, std::memcmp(g1.data(), g.data() + t * N, size_t(N) * 4)) << dtype_name(dt) << " T " << T << " row " << t;
      }
    }
}

}  // namespace
}  // namespace mcpm::test
