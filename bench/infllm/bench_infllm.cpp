// InfLLM v2 CPU kernel benchmarks (Google Benchmark), one layer, shipped sparse_config (96 blocks
// of 64, LSE over C2), bf16 caches filled with random values:
//   Select/<layout>/<L>/<T>        stage 1 for T queries at the end of an L-token context
//   SparseAttn/<layout>/<L>/<T>    stage 2 over the selected blocks
//   DenseAttn/<layout>/<L>/<T>     cpu::attention at the same length (the baseline)
// layout 0 = MiniCPM4-0.5B (2 kv heads, G 8, d 64), 1 = MiniCPM4-8B (2 kv heads, G 16, d 128).
// Counters: bytes = cache bytes the op reads per call (KV or compressed keys), GB/s.
// Threads: MCPM_BENCH_THREADS (default: all hardware threads).
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdlib>
#include <memory>
#include <vector>

#include "core/rng.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/infllm_ops.h"

namespace {

using namespace mcpm;

int bench_threads() {
  if (const char* e = std::getenv("MCPM_BENCH_THREADS")) return std::max(1, std::atoi(e));
  return ThreadPool::default_threads();
}

ThreadPool& pool() {
  static ThreadPool p(bench_threads());
  return p;
}

struct Layout {
  int64_t n_kv, G, d;
};
constexpr Layout kLayouts[] = {{2, 8, 64}, {2, 16, 128}};

// One layer's caches for a context of L tokens (+ the T queries), compressed keys built.
struct Setup {
  Layout lay;
  int64_t L, T, cap;
  InfllmParams p;
  std::vector<uint16_t> k, v, c1, c2;
  std::vector<float> q, out;
  std::vector<int32_t> ids;
  std::vector<char> scratch, dense_scratch;
  KvLayer kv;
  CompressedKeys c;
  cpu::Context ctx;
  BlockIndex idx;

  Setup(const Layout& l, int64_t L_, int64_t T_) : lay(l), L(L_), T(T_), cap(L_) {
    const int64_t n_heads = l.n_kv * l.G;
    Rng rng(1);
    k.resize(size_t(l.n_kv * cap * l.d));
    v.resize(k.size());
    for (auto& x : k) x = f32_to_bf16(rng.uniform() * 2 - 1);
    for (auto& x : v) x = f32_to_bf16(rng.uniform() * 2 - 1);
    kv = KvLayer{k.data(), v.data(), DType::BF16, l.n_kv, l.d, cap};
    c.dtype = DType::BF16;
    c.n_kv = l.n_kv;
    c.d = l.d;
    c.cap1 = p.n_fine(cap);
    c.cap2 = p.n_coarse(cap);
    c1.resize(size_t(std::max<int64_t>(1, l.n_kv * c.cap1 * l.d)));
    c2.resize(size_t(std::max<int64_t>(1, l.n_kv * c.cap2 * l.d)));
    c.c1 = c1.data();
    c.c2 = c2.data();
    ctx.pool = &pool();
    cpu::infllm_compress(ctx, kv, c, p, 0, L);
    q.resize(size_t(T * n_heads * l.d));
    for (auto& x : q) x = rng.uniform() * 2 - 1;
    out.resize(q.size());
    ids.resize(size_t(l.n_kv * T * p.topk_total));
    idx = BlockIndex{ids.data(), T, p.topk_total};
    scratch.resize(cpu::infllm_scratch_bytes(T, n_heads, l.n_kv, l.d, cap, p, pool().size()));
    dense_scratch.resize(cpu::attention_scratch_bytes(T, n_heads, l.d, cap, pool().size()));
  }
  int64_t n_heads() const { return lay.n_kv * lay.G; }
  float scale() const { return float(1.0 / std::sqrt(double(lay.d))); }
  int64_t pos0() const { return L - T; }
};

void BM_Select(benchmark::State& st) {
  Setup s(kLayouts[st.range(0)], st.range(1), st.range(2));
  for (auto _ : st)
    cpu::infllm_select(s.ctx, s.q.data(), s.T, s.n_heads(), s.pos0(), s.c, s.p, s.scale(), s.idx, s.scratch.data());
  const double bytes = double(s.lay.n_kv * (s.p.n_fine(s.L) + s.p.n_coarse(s.L)) * s.lay.d * 2);
  st.counters["bytes"] = bytes;
  st.counters["GB/s"] = benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_SparseAttn(benchmark::State& st) {
  Setup s(kLayouts[st.range(0)], st.range(1), st.range(2));
  cpu::infllm_select(s.ctx, s.q.data(), s.T, s.n_heads(), s.pos0(), s.c, s.p, s.scale(), s.idx, s.scratch.data());
  for (auto _ : st)
    cpu::infllm_attention(s.ctx, s.q.data(), s.T, s.n_heads(), s.pos0(), s.kv, s.p, s.idx, s.scale(), s.out.data(),
                          s.scratch.data());
  const double bytes = double(s.lay.n_kv * std::min<int64_t>(s.L, 6144) * s.lay.d * 2 * 2);
  st.counters["bytes"] = bytes;
  st.counters["GB/s"] = benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_DenseAttn(benchmark::State& st) {
  Setup s(kLayouts[st.range(0)], st.range(1), st.range(2));
  for (auto _ : st)
    cpu::attention(s.ctx, s.q.data(), s.T, s.n_heads(), s.pos0(), s.kv, s.scale(), s.out.data(), s.dense_scratch.data());
  const double bytes = double(s.lay.n_kv * s.L * s.lay.d * 2 * 2);
  st.counters["bytes"] = bytes;
  st.counters["GB/s"] = benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate);
}

void Args(benchmark::internal::Benchmark* b) {
  for (int64_t lay : {0, 1})
    for (int64_t L : {8192, 32768, 131072}) {
      b->Args({lay, L, 1});
      b->Args({lay, L, 64});
    }
  b->Unit(benchmark::kMicrosecond);
}

BENCHMARK(BM_Select)->Apply(Args);
BENCHMARK(BM_SparseAttn)->Apply(Args);
BENCHMARK(BM_DenseAttn)->Apply(Args);

}  // namespace

BENCHMARK_MAIN();
