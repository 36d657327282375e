// InfLLM v2 CUDA kernels (kernels/cuda/infllm_*) against the same scalar reference as the CPU
// kernels: compression within one bf16 ulp, stage-1 selections valid against the reference's fp64
// scores (fp32 SIMT path: 1e-4 relative; bf16 tensor-core path: q rounded to bf16, so scores are
// compared within 5e-2 relative, cf. the spec §6 "about 1e-2"), stage 2 equal to the reference's
// attention over the kernel's own selection (split-KV decode, SIMT and tensor-core prefill),
// decode == prefill selections, and the model end to end on the CUDA backend (graph-captured
// sparse decode equal to sparse prefill, CUDA equal to CPU in exact mode). Skipped without a GPU.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "backend/backend.h"
#include "common/test_util.h"
#include "core/rng.h"
#include "infllm_test_util.h"
#include "kernels/cuda/infllm_ops.h"
#include "kernels/ref/infllm_ref.h"
#include "kernels/ref/ref.h"
#include "model/model.h"
#include "model/random_checkpoint.h"

namespace mcpm::test {
namespace {

#define MCPM_REQUIRE_GPU()                                                          \
  do {                                                                              \
    int n_ = 0;                                                                     \
    if (cudaGetDeviceCount(&n_) != cudaSuccess || n_ == 0) {                        \
      cudaGetLastError();                                                           \
      GTEST_SKIP() << "no CUDA device: the InfLLM v2 CUDA kernels are not run";     \
    }                                                                               \
  } while (0)

void check_cuda(cudaError_t e, const char* what) { ASSERT_EQ(e, cudaSuccess) << what << ": " << cudaGetErrorString(e); }

// Device copy of a host buffer (freed on scope exit).
struct Dev {
  void* p = nullptr;
  size_t n = 0;
  explicit Dev(size_t bytes) : n(bytes) { check_cuda(cudaMalloc(&p, std::max<size_t>(bytes, 16)), "cudaMalloc"); }
  Dev(const void* host, size_t bytes) : Dev(bytes) { put(host); }
  ~Dev() { cudaFree(p); }
  void put(const void* host) { check_cuda(cudaMemcpy(p, host, n, cudaMemcpyHostToDevice), "upload"); }
  void get(void* host) const { check_cuda(cudaMemcpy(host, p, n, cudaMemcpyDeviceToHost), "download"); }
  template <class T> T* as() const { return static_cast<T*>(p); }
};

struct CudaCase {
  InfllmParams p;
  int64_t n_kv, G, d, L, T;
};

// Host fixture + device mirror: cache, reference-compressed keys, queries.
struct Fixture {
  CudaCase c;
  TestKv kv;
  TestCompressed rc;
  std::vector<float> q;
  Dev dk, dv, dc1, dc2, dq, dpos;
  KvLayer dkv;
  CompressedKeys dcomp;
  Fixture(const CudaCase& cc, DType dt, uint64_t seed)
      : c(cc), kv(cc.n_kv, cc.d, cc.L + 3, cc.L, dt, seed), rc(cc.p, cc.n_kv, cc.d, cc.L + 3, dt),
        q(test_queries(cc.T, cc.n_kv * cc.G, cc.d, seed + 1)), dk(kv.k.data(), kv.k.size()), dv(kv.v.data(), kv.v.size()),
        dc1(rc.c1.size()), dc2(rc.c2.size()), dq(q.data(), q.size() * 4), dpos(4) {
    ref::infllm_compress(kv.kv, rc.c, cc.p, 0, cc.L);
    dc1.put(rc.c1.data());
    dc2.put(rc.c2.data());
    const int32_t pos0 = int32_t(cc.L - cc.T);
    dpos.put(&pos0);
    dkv = kv.kv;
    dkv.k = dk.p;
    dkv.v = dv.p;
    dcomp = rc.c;
    dcomp.c1 = dc1.p;
    dcomp.c2 = dc2.p;
  }
  int64_t n_heads() const { return c.n_kv * c.G; }
  float scale() const { return float(1.0 / std::sqrt(double(c.d))); }
};

std::vector<int32_t> run_select(Fixture& f, bool tc, Dev& scratch) {
  TestIndex host(f.c.n_kv, f.c.T, f.c.p.topk_total);
  Dev ids(host.ids.size() * 4);
  const BlockIndex idx{ids.as<int32_t>(), f.c.T, f.c.p.topk_total};
  cuda::infllm_select(nullptr, f.dq.as<float>(), f.c.T, f.n_heads(), f.dpos.as<int32_t>(), f.dcomp, f.c.p, f.scale(), idx,
                      tc, scratch.p);
  check_cuda(cudaDeviceSynchronize(), "select");
  ids.get(host.ids.data());
  return host.ids;
}

void check_selection(Fixture& f, const std::vector<int32_t>& ids, double rel_tol) {
  const int64_t pos0 = f.c.L - f.c.T;
  for (int64_t g = 0; g < f.c.n_kv; ++g)
    for (int64_t t = 0; t < f.c.T; ++t) {
      const ref::InfllmScores s =
          ref::infllm_scores(f.q.data() + t * f.n_heads() * f.c.d, f.n_heads(), pos0 + t, g, f.rc.c, f.c.p, f.scale(), f.c.L);
      const std::string err = check_row(ids.data() + (g * f.c.T + t) * f.c.p.topk_total, f.c.p, pos0 + t, f.c.L, s.block, rel_tol);
      ASSERT_EQ(err, "") << "g=" << g << " t=" << pos0 + t;
    }
}

TEST(InfllmCuda, CompressMatchesReference) {
  MCPM_REQUIRE_GPU();
  const InfllmParams p = small_params();
  for (DType dt : {DType::BF16, DType::F32}) {
    Fixture f({p, 2, 1, 64, 900, 1}, dt, 3);
    TestCompressed got(p, 2, 64, 903, dt);
    Dev c1(got.c1.size()), c2(got.c2.size());
    CompressedKeys dc = got.c;
    dc.c1 = c1.p;
    dc.c2 = c2.p;
    // Chunks of odd sizes, then decode steps (positions read on the device).
    int64_t pos = 0;
    for (int64_t n : {1, 30, 97, 64, 300, 1, 1, 406}) {
      const int32_t p0 = int32_t(pos);
      f.dpos.put(&p0);
      cuda::infllm_compress(nullptr, f.dkv, dc, p, f.dpos.as<int32_t>(), n);
      pos += n;
    }
    check_cuda(cudaDeviceSynchronize(), "compress");
    c1.get(got.c1.data());
    c2.get(got.c2.data());
    for (int64_t i = 0; i < 2 * f.rc.c.cap1 * 64; ++i) {
      const float x = ref::load_f32(f.rc.c.c1, dt, i), y = ref::load_f32(got.c.c1, dt, i);
      ASSERT_LE(std::fabs(x - y), dt == DType::BF16 ? std::max(std::fabs(x), 1e-3f) / 128 : 4e-6f) << i;
    }
    for (int64_t i = 0; i < 2 * f.rc.c.cap2 * 64; ++i) {
      const float x = ref::load_f32(f.rc.c.c2, dt, i), y = ref::load_f32(got.c.c2, dt, i);
      ASSERT_LE(std::fabs(x - y), dt == DType::BF16 ? std::max(std::fabs(x), 1e-3f) / 128 : 4e-6f) << i;
    }
  }
}

TEST(InfllmCuda, SelectionsValidAndAttentionMatchesReference) {
  MCPM_REQUIRE_GPU();
  const CudaCase cases[] = {
      {small_params(1, 2, 3), 2, 8, 64, 777, 70},  {small_params(2, 1, 4), 1, 16, 128, 1039, 33},
      {small_params(1, 0, 3), 2, 1, 32, 700, 1},   {shipped_params(), 2, 16, 128, 6150, 10},
      {shipped_params(), 1, 8, 64, 2241, 200},     {small_params(1, 2, 3), 2, 4, 64, 31, 31},
      {small_params(1, 2, 3), 1, 16, 64, 127, 1},  {shipped_params(), 2, 16, 128, 8200, 1},
  };
  for (const CudaCase& c : cases)
    for (DType dt : {DType::BF16, DType::F32})
      for (bool tc : {false, true}) {
        SCOPED_TRACE(::testing::Message() << "G=" << c.G << " d=" << c.d << " L=" << c.L << " T=" << c.T << " "
                                          << dtype_name(dt) << (tc ? " tensor cores" : " simt"));
        Fixture f(c, dt, uint64_t(c.L));
        Dev scratch(cuda::infllm_scratch_bytes(c.T, f.n_heads(), c.n_kv, c.d, c.L + 3, c.p));
        const std::vector<int32_t> ids = run_select(f, tc, scratch);
        const bool bf16_scores = tc && cuda::infllm_tensor_cores_supported(dt, c.d, c.G, c.p);
        check_selection(f, ids, bf16_scores ? 5e-2 : 1e-4);
        if (::testing::Test::HasFatalFailure()) return;
        // Stage 2 with the kernel's own selection.
        Dev dids(ids.data(), ids.size() * 4), dout(f.q.size() * 4);
        const BlockIndex idx{dids.as<int32_t>(), c.T, c.p.topk_total};
        cuda::infllm_attention(nullptr, f.dq.as<float>(), c.T, f.n_heads(), f.dpos.as<int32_t>(), f.dkv, c.p, idx,
                               f.scale(), dout.as<float>(), tc, 7, scratch.p);
        check_cuda(cudaDeviceSynchronize(), "attention");
        std::vector<float> got(f.q.size()), want(f.q.size());
        dout.get(got.data());
        const BlockIndex hidx{const_cast<int32_t*>(ids.data()), c.T, c.p.topk_total};
        ref::infllm_attention(f.q.data(), c.T, f.n_heads(), c.L - c.T, f.kv.kv, c.p, hidx, f.scale(), want.data());
        // bf16 tensor cores round q and P to bf16: ~1e-2 of |V|; fp32 SIMT: fp32 noise.
        const bool bf16_attn = tc && c.T > 1 && bf16_scores;
        EXPECT_LE(max_abs_diff(got.data(), want.data(), got.size()), bf16_attn ? 3e-2 : 1e-4);
      }
}

TEST(InfllmCuda, DecodeSelectionsEqualPrefill) {
  MCPM_REQUIRE_GPU();
  const CudaCase c{small_params(1, 2, 3), 2, 8, 64, 760, 120};
  for (bool tc : {false, true}) {
    Fixture f(c, DType::BF16, 9);
    Dev scratch(cuda::infllm_scratch_bytes(c.T, f.n_heads(), c.n_kv, c.d, c.L + 3, c.p));
    const std::vector<int32_t> all = run_select(f, tc, scratch);
    for (int64_t t = 0; t < c.T; t += 7) {  // one token at a time, as decode calls it
      CudaCase one = c;
      one.T = 1;
      one.L = c.L - c.T + t + 1;
      Fixture g(one, DType::BF16, 9);
      // Same cache and queries: point the one-token fixture at token t of the full one.
      g.dq.put(f.q.data() + t * f.n_heads() * c.d);
      g.q.assign(f.q.begin() + t * f.n_heads() * c.d, f.q.begin() + (t + 1) * f.n_heads() * c.d);
      g.dkv = f.dkv;
      g.dcomp = f.dcomp;
      const std::vector<int32_t> row = run_select(g, tc, scratch);
      for (int64_t gi = 0; gi < c.n_kv; ++gi)
        EXPECT_TRUE(std::equal(row.begin() + gi * c.p.topk_total, row.begin() + (gi + 1) * c.p.topk_total,
                               all.begin() + (gi * c.T + t) * c.p.topk_total))
            << "token " << t << " kv head " << gi << (tc ? " tensor cores" : " simt");
    }
  }
}

std::vector<float> model_logits(const std::string& dir, const std::string& device, bool exact,
                                const std::vector<int32_t>& toks, int64_t chunk, int64_t n_decode) {
  BackendOptions bo;
  bo.n_threads = 2;
  bo.bf16_activations = !exact;
  auto be = make_backend(device, bo);
  auto m = Model::load(dir, *be, LoadOptions{1024, 256, 64, DType::BF16, SparseMode::On});
  const int64_t V = m->spec().vocab_size, n = int64_t(toks.size());
  std::vector<float> out(size_t(n * V));
  int64_t i = 0;
  for (; i < n - n_decode; i += chunk) {
    const int64_t k = std::min(chunk, n - n_decode - i);
    m->forward(toks.data() + i, k);
    m->logits(0, k, out.data() + i * V);
  }
  for (; i < n; ++i) {  // graph-captured sparse decode steps on CUDA
    m->forward(toks.data() + i, 1);
    m->logits(0, 1, out.data() + i * V);
  }
  return out;
}

TEST(InfllmCuda, ModelSparseDecodeAndCpuAgreement) {
  MCPM_REQUIRE_GPU();
  RandomCheckpointOptions o;
  o.spec = make_spec(256, 2, 4, 2, 256, 64);  // head_dim 64
  SparseConfig sc;
  sc.window_size = 128;
  sc.topk = 3;
  sc.dense_len = 300;
  o.spec.sparse = sc;
  o.init_std = 0.5;
  const std::string dir = temp_dir();
  write_random_checkpoint(o, dir);
  Rng rng(3);
  std::vector<int32_t> toks(800);
  for (auto& x : toks) x = int32_t(rng.next_u64() % 64);
  // Exact mode (fp32 SIMT kernels): CUDA equals CPU.
  const auto cpu = model_logits(dir, "cpu", true, toks, 256, 100);
  const auto gpu = model_logits(dir, "cuda", true, toks, 256, 100);
  double scale = 0;
  for (float x : cpu) scale = std::max(scale, double(std::fabs(x)));
  EXPECT_LE(max_abs_diff(cpu.data(), gpu.data(), cpu.size()), 1e-3 * scale);
  // Tensor cores: sparse decode (graphs) equals sparse prefill of the same tokens.
  const auto pre = model_logits(dir, "cuda", false, toks, 256, 0);
  const auto dec = model_logits(dir, "cuda", false, toks, 256, 100);
  EXPECT_LE(max_abs_diff(pre.data() + 700 * 64, dec.data() + 700 * 64, 100 * 64), 3e-2 * scale);
}

}  // namespace
}  // namespace mcpm::test
