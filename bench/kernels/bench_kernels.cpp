// CPU kernel benchmarks (Google Benchmark), reported against the speed of light:
//   ReadBandwidth     the baseline: a plain multi-threaded read loop over a buffer far larger than
//                     any cache (best of several passes), in the same binary and thread pool
//   Gemv              decode matmuls at the MiniCPM4 0.5B / 8B shapes: GB/s of weight bytes and % of
//                     the read baseline (weights rotate through >= 1 GiB of copies, so they come
//                     from DRAM as in a real decode step, not from the large L3)
//   GemvSmallT        T = 2..8 tokens: GEMV vs the batched paths (speculative verify sizes)
//   GemvRowInvariant  T = 1..32 row-invariant GEMV (tree verification / server batches), bf16 + f32
//   QGemvRowInvariant the same for q8 / q4 / t2 weights (integer kernels of the best ISA)
//   Gemm              prefill matmuls at T = 512 per path: GFLOP/s
//   AttentionDecode   one layer, one token, 0.5B head layout, context 512 / 4K / 32K: GB/s of KV bytes
//   AttentionPrefill  one layer, 512 tokens: GFLOP/s
// Threads: MCPM_BENCH_THREADS (default: all hardware threads). MCPM_BENCH_HWY_TARGET=AVX2 (etc.)
// runs the portable kernels on that Highway target, to see what an AVX2-only machine gets.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/cpu_features.h"
#include "core/dtype.h"
#include "core/rng.h"
#include "core/thread_pool.h"
#include "core/timer.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/weight_types.h"
#include "read_bandwidth.h"

namespace {

using mcpm::DType;
using mcpm::Matrix;
using mcpm::WType;
using mcpm::WeightTypeInfo;
using mcpm::weight_type_info;
using mcpm::isa_name;
using mcpm::best_isa;
namespace cpu = mcpm::cpu;

constexpr size_t kRotateBytes = size_t(1) << 30;  // weights cycled per benchmark: beyond any cache
constexpr size_t kBaselineBytes = size_t(1) << 30;
constexpr int kBaselinePasses = 5;

int bench_threads() {
  if (const char* e = std::getenv("MCPM_BENCH_THREADS")) return std::max(1, std::atoi(e));
  return mcpm::ThreadPool::default_threads();
}

mcpm::ThreadPool& pool() {
  static mcpm::ThreadPool p(bench_threads());
  return p;
}

cpu::Context ctx(cpu::MatmulPath path = cpu::MatmulPath::Auto) {
  cpu::Context c;
  c.pool = &pool();
  c.force_path = path;
  return c;
}

// Memory touched once so that page faults stay out of the timings (huge pages where possible).
struct Buffer {
  void* p = nullptr;
  size_t n = 0;
  explicit Buffer(size_t bytes) : n(bytes) {
    p = std::aligned_alloc(size_t(2) << 20, (bytes + (size_t(2) << 20) - 1) / (size_t(2) << 20) * (size_t(2) << 20));
    std::memset(p, 0, bytes);
  }
  ~Buffer() { std::free(p); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
};

// ---- read-bandwidth baseline -----------------------------------------------------------------
double baseline_gbps() {
  static const double gbps = mcpm::bench::read_bandwidth_gbps(pool(), kBaselineBytes, kBaselinePasses);
  return gbps;
}

void BM_ReadBandwidth(benchmark::State& state) {
  double best = 0.0;
  for (auto _ : state) best = std::max(best, mcpm::bench::read_bandwidth_gbps(pool(), kBaselineBytes, 1));
  state.counters["best_GB/s"] = best;
  state.counters["threads"] = pool().size();
}
BENCHMARK(BM_ReadBandwidth)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(8);

// ---- GEMV -------------------------------------------------------------------------------------
struct GemvShape {
  const char* name;
  int64_t N, K;
};
const GemvShape kGemvShapes[] = {
    {"0.5B_q_o_1024x1024", 1024, 1024},   {"0.5B_kv_128x1024", 128, 1024},
    {"0.5B_gate_up_4096x1024", 4096, 1024}, {"0.5B_down_1024x4096", 1024, 4096},
    {"0.5B_lm_head_73448x1024", 73448, 1024}, {"8B_q_o_4096x4096", 4096, 4096},
    {"8B_kv_256x4096", 256, 4096},         {"8B_gate_up_16384x4096", 16384, 4096},
    {"8B_down_4096x16384", 4096, 16384},   {"8B_lm_head_73448x4096", 73448, 4096},
};

// Copies of one random matrix filling kRotateBytes (at least 2).
struct RotatingWeights {
  std::unique_ptr<Buffer> buf;
  std::vector<Matrix> mats;
  size_t bytes_each = 0;
  RotatingWeights(int64_t N, int64_t K, DType dt) {
    bytes_each = size_t(N * K) * mcpm::dtype_size(dt);
    const size_t stride = (bytes_each + 4095) / 4096 * 4096;
    const size_t copies = std::max<size_t>(2, kRotateBytes / stride);
    buf = std::make_unique<Buffer>(stride * copies);
    mcpm::Rng rng(1);
    char* base = static_cast<char*>(buf->p);
    for (int64_t i = 0; i < N * K; ++i) {
      const float v = rng.uniform() - 0.5f;
      if (dt == DType::BF16) {
        reinterpret_cast<uint16_t*>(base)[i] = mcpm::f32_to_bf16(v);
      } else {
        reinterpret_cast<float*>(base)[i] = v;
      }
    }
    for (size_t c = 1; c < copies; ++c) std::memcpy(base + c * stride, base, bytes_each);
    for (size_t c = 0; c < copies; ++c) mats.push_back(Matrix{base + c * stride, dt, N, K});
  }
};

void BM_Gemv(benchmark::State& state, GemvShape s, DType dt) {
  RotatingWeights w(s.N, s.K, dt);
  std::vector<float> x(size_t(s.K)), y(size_t(s.N));
  mcpm::Rng rng(2);
  for (auto& v : x) v = rng.uniform();
  size_t i = 0;
  const cpu::Context c = ctx();
  for (auto _ : state) {
    cpu::matmul(c, x.data(), 1, w.mats[i++ % w.mats.size()], y.data());
    benchmark::DoNotOptimize(y.data());
  }
  const double bytes = double(w.bytes_each);
  state.counters["GB/s"] = benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["baseline_GB/s"] = baseline_gbps();
  state.SetLabel(cpu::matmul_path_name(c, dt, 1));
}

void BM_GemvPctOfBaseline(benchmark::State& state, GemvShape s, DType dt) {
  // Same as BM_Gemv, but reports best-of-iterations as % of the read baseline (noise-robust).
  RotatingWeights w(s.N, s.K, dt);
  std::vector<float> x(size_t(s.K), 0.5f), y(size_t(s.N));
  const cpu::Context c = ctx();
  size_t i = 0;
  double best = 0.0;
  for (auto _ : state) {
    const double t0 = mcpm::now_seconds();
    cpu::matmul(c, x.data(), 1, w.mats[i++ % w.mats.size()], y.data());
    best = std::max(best, double(w.bytes_each) / (mcpm::now_seconds() - t0) * 1e-9);
  }
  state.counters["best_GB/s"] = best;
  state.counters["pct_of_read"] = 100.0 * best / baseline_gbps();
}

// ---- small T: GEMV vs batched paths -------------------------------------------------------------
void BM_GemvSmallT(benchmark::State& state, cpu::MatmulPath path) {
  const int64_t T = state.range(0), N = 4096, K = 1024;
  if (!cpu::matmul_path_supported(path, DType::BF16)) {
    state.SkipWithError("path not supported on this CPU");
    return;
  }
  RotatingWeights w(N, K, DType::BF16);
  std::vector<float> x(size_t(T * K), 0.25f), y(size_t(T * N));
  const cpu::Context c = ctx(path);
  size_t i = 0;
  for (auto _ : state) {
    cpu::matmul(c, x.data(), T, w.mats[i++ % w.mats.size()], y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GB/s"] = benchmark::Counter(double(w.bytes_each), benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(cpu::matmul_path_name(c, DType::BF16, T));
}

// ---- row-invariant GEMV (speculative verification, server batches) ------------------------------
// T token rows through the Gemv path (every row = its one-row result bit for bit); reports GB/s of
// weight bytes (one read per call is the floor) and ms per call.
void BM_GemvRowInvariant(benchmark::State& state, GemvShape s, DType dt) {
  const int64_t T = state.range(0);
  RotatingWeights w(s.N, s.K, dt);
  std::vector<float> x(size_t(T * s.K)), y(size_t(T * s.N));
  mcpm::Rng rng(3);
  for (auto& v : x) v = rng.uniform() - 0.5f;
  cpu::Context c = ctx();
  c.row_invariant = true;
  size_t i = 0;
  for (auto _ : state) {
    cpu::matmul(c, x.data(), T, w.mats[i++ % w.mats.size()], y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GB/s"] = benchmark::Counter(double(w.bytes_each), benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(cpu::matmul_path_name(c, dt, T));
}

// The same for a quantized type (random codes, per-row-group scales 32 columns wide), copies
// rotating through more than the L3: weights come from DRAM as in decode.
void BM_QGemvRowInvariant(benchmark::State& state, GemvShape s, WType type) {
  const int64_t T = state.range(0), group = 128;
  const WeightTypeInfo& info = weight_type_info(type);
  const size_t rb = info.row_bytes(s.K), codes_bytes = size_t(s.N) * rb;
  const size_t copies = std::max<size_t>(2, (size_t(96) << 20) / codes_bytes);
  std::vector<uint8_t> packed(codes_bytes * copies);
  std::vector<float> scales(size_t(s.N * (s.K / group)), 0.01f);
  mcpm::Rng rng(4);
  std::vector<uint8_t> codes(static_cast<size_t>(s.K));
  const int range = type == WType::T2 ? 3 : 1 << info.bits;
  for (int64_t n = 0; n < s.N; ++n) {
    for (auto& c : codes) c = uint8_t(rng.next_u64() % uint64_t(range));
    info.pack_codes(codes.data(), s.K, packed.data() + size_t(n) * rb);
  }
  for (size_t c = 1; c < copies; ++c) std::memcpy(packed.data() + c * codes_bytes, packed.data(), codes_bytes);
  std::vector<Matrix> mats(copies);
  for (size_t c = 0; c < copies; ++c) {
    Matrix& m = mats[c];
    m.type = type;
    m.data = packed.data() + c * codes_bytes;
    m.rows = s.N;
    m.cols = s.K;
    m.group = group;
    m.scales = scales.data();
  }
  std::vector<float> x(size_t(T * s.K)), y(size_t(T * s.N));
  for (auto& v : x) v = rng.uniform() - 0.5f;
  cpu::Context c = ctx();
  c.row_invariant = true;
  size_t i = 0;
  for (auto _ : state) {
    cpu::matmul(c, x.data(), T, mats[i++ % copies], y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GB/s"] = benchmark::Counter(double(codes_bytes), benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(isa_name(best_isa()));
}

// ---- GEMM at T = 512 ------------------------------------------------------------------------------
void BM_Gemm(benchmark::State& state, GemvShape s, DType dt, cpu::MatmulPath path) {
  const int64_t T = 512;
  if (!cpu::matmul_path_supported(path, dt)) {
    state.SkipWithError("path not supported on this CPU");
    return;
  }
  RotatingWeights w(s.N, s.K, dt);
  std::vector<float> x(size_t(T * s.K)), y(size_t(T * s.N));
  mcpm::Rng rng(3);
  for (auto& v : x) v = rng.uniform() - 0.5f;
  const cpu::Context c = ctx(path);
  size_t i = 0;
  for (auto _ : state) {
    cpu::matmul(c, x.data(), T, w.mats[i++ % w.mats.size()], y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * double(T * s.N * s.K) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(cpu::matmul_path_name(c, dt, T));
}

// ---- attention ------------------------------------------------------------------------------------
struct AttnLayer {
  int64_t n_heads = 16, n_kv = 2, d = 64, cap;
  std::vector<uint16_t> k, v;
  std::vector<char> scratch;
  std::vector<float> q, out;
  mcpm::KvLayer kv;
  AttnLayer(int64_t capacity, int64_t max_T) : cap(capacity) {
    k.resize(size_t(n_kv * cap * d));
    v.resize(k.size());
    mcpm::Rng rng(4);
    for (auto& e : k) e = mcpm::f32_to_bf16(rng.uniform() - 0.5f);
    for (auto& e : v) e = mcpm::f32_to_bf16(rng.uniform() - 0.5f);
    kv = mcpm::KvLayer{k.data(), v.data(), DType::BF16, n_kv, d, cap};
    scratch.resize(cpu::attention_scratch_bytes(max_T, n_heads, d, cap, pool().size()));
    q.resize(size_t(max_T * n_heads * d));
    for (auto& e : q) e = rng.uniform() - 0.5f;
    out.resize(q.size());
  }
};

void BM_AttentionDecode(benchmark::State& state) {
  const int64_t ctx_len = state.range(0);
  AttnLayer L(ctx_len, 1);
  const cpu::Context c = ctx();
  for (auto _ : state) {
    cpu::attention(c, L.q.data(), 1, L.n_heads, ctx_len - 1, L.kv, 0.125f, L.out.data(), L.scratch.data());
    benchmark::DoNotOptimize(L.out.data());
  }
  const double kv_bytes = 2.0 * double(ctx_len * L.n_kv * L.d) * 2;
  state.counters["KV_GB/s"] = benchmark::Counter(kv_bytes, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] = benchmark::Counter(4.0 * double(ctx_len * L.n_heads * L.d) * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

void BM_AttentionPrefill(benchmark::State& state) {
  const int64_t T = state.range(0);
  AttnLayer L(T, T);
  const cpu::Context c = ctx();
  for (auto _ : state) {
    cpu::attention(c, L.q.data(), T, L.n_heads, 0, L.kv, 0.125f, L.out.data(), L.scratch.data());
    benchmark::DoNotOptimize(L.out.data());
  }
  // causal: T (T + 1) / 2 (query, key) pairs per head, 2 matmuls of d MACs each
  const double flops = 4.0 * double(T * (T + 1) / 2) * double(L.n_heads * L.d);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void register_all() {
  for (const GemvShape& s : kGemvShapes) {
    for (DType dt : {DType::BF16, DType::F32}) {
      if (dt == DType::F32 && s.N * s.K > int64_t(1) << 27) continue;  // f32 8B lm_head etc.: too big to rotate
      const std::string n = std::string("Gemv/") + s.name + "/" + std::string(mcpm::dtype_name(dt));
      benchmark::RegisterBenchmark(n.c_str(), BM_Gemv, s, dt)->Unit(benchmark::kMicrosecond)->UseRealTime();
      benchmark::RegisterBenchmark((n + "/best").c_str(), BM_GemvPctOfBaseline, s, dt)
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime()
          ->Iterations(200);
    }
  }
  for (auto [name, path] : {std::pair{"gemv", cpu::MatmulPath::Gemv}, std::pair{"amx", cpu::MatmulPath::Amx},
                            std::pair{"avx512bf16", cpu::MatmulPath::Avx512Bf16},
                            std::pair{"hwy-f32", cpu::MatmulPath::HwyF32}})
    benchmark::RegisterBenchmark((std::string("GemvSmallT/4096x1024/") + name).c_str(), BM_GemvSmallT, path)
        ->Arg(1)->Arg(2)->Arg(3)->Arg(4)->Arg(5)->Arg(6)->Arg(8)->Arg(16)
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
  const GemvShape tiny_shapes[] = {{"tiny_q_256x256", 256, 256}, {"tiny_down_256x640", 256, 640},
                                   {"tiny_head_4096x256", 4096, 256}, {"tiny_head_4000x256", 4000, 256}};
  for (const GemvShape& s : tiny_shapes)
    benchmark::RegisterBenchmark((std::string("GemvRowInvariant/") + s.name + "/bf16").c_str(), BM_GemvRowInvariant, s,
                                 DType::BF16)
        ->Arg(1)->Arg(4)->Arg(6)->Arg(8)->Arg(16)
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
  for (const GemvShape& s : {kGemvShapes[2], kGemvShapes[3]})
    for (DType dt : {DType::BF16, DType::F32})
      benchmark::RegisterBenchmark(
          (std::string("GemvRowInvariant/") + s.name + "/" + std::string(mcpm::dtype_name(dt))).c_str(),
          BM_GemvRowInvariant, s, dt)
          ->Arg(1)->Arg(2)->Arg(4)->Arg(8)->Arg(16)->Arg(32)
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
  for (WType type : {WType::Q8, WType::Q4, WType::T2})
    benchmark::RegisterBenchmark(
        (std::string("QGemvRowInvariant/") + kGemvShapes[2].name + "/" + weight_type_info(type).name).c_str(),
        BM_QGemvRowInvariant, kGemvShapes[2], type)
        ->Arg(1)->Arg(2)->Arg(4)->Arg(8)->Arg(16)->Arg(32)
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
  const GemvShape gemm_shapes[] = {{"0.5B_q_o_1024x1024", 1024, 1024},
                                   {"0.5B_kv_128x1024", 128, 1024},
                                   {"0.5B_gate_up_4096x1024", 4096, 1024},
                                   {"0.5B_down_1024x4096", 1024, 4096},
                                   {"8B_q_o_4096x4096", 4096, 4096}};
  for (const GemvShape& s : gemm_shapes)
    for (auto [name, path] : {std::pair{"amx", cpu::MatmulPath::Amx}, std::pair{"avx512bf16", cpu::MatmulPath::Avx512Bf16},
                              std::pair{"hwy-f32", cpu::MatmulPath::HwyF32}})
      benchmark::RegisterBenchmark((std::string("GemmT512/") + s.name + "/" + name).c_str(), BM_Gemm, s, DType::BF16, path)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
  benchmark::RegisterBenchmark("AttentionDecode/0.5B_layer", BM_AttentionDecode)
      ->Arg(512)->Arg(4096)->Arg(32768)
      ->Unit(benchmark::kMicrosecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark("AttentionPrefill/0.5B_layer", BM_AttentionPrefill)
      ->Arg(512)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
  if (const char* want = std::getenv("MCPM_BENCH_HWY_TARGET")) {
    for (int64_t t : cpu::hwy_targets()) {
      cpu::hwy_force_target(t);
      if (std::string(cpu::hwy_target_name()) == want) break;
      cpu::hwy_force_target(0);
    }
  }
  benchmark::Initialize(&argc, argv);
  register_all();
  benchmark::AddCustomContext("cpu", mcpm::cpu_features().describe());
  benchmark::AddCustomContext("threads", std::to_string(pool().size()));
  benchmark::AddCustomContext("hwy_target", cpu::hwy_target_name());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
