// End-to-end timing of Model::forward on the CPU backend, for kernel work (the CLI `bench` command is
// the user-facing tool). Usage:
//   mcpm-bench-model <checkpoint dir> [--threads N] [--reps R] [--decode N] [--long-ctx C]
// Reports, best of R repetitions:
//   prefill   forward() of 512 tokens from an empty cache                   tokens/s, GFLOP/s
//   decode    forward(1) + logits of that token, after a 512-token prompt   tokens/s, % of the
//             bandwidth floor (weight bytes per token / the read baseline measured here)
//   decode@C  the same with C tokens already in the cache (prefilled in chunks of 512)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/thread_pool.h"
#include "core/timer.h"
#include "kernels/cpu/cpu_ops.h"
#include "model/model.h"
#include "read_bandwidth.h"

namespace {

constexpr int64_t kPrompt = 512;
constexpr size_t kReadBytes = size_t(1) << 30;

// Plain read bandwidth with the same thread count (GB/s, best of 3 passes).
double read_baseline(int n_threads) {
  mcpm::ThreadPool pool(n_threads);
  return mcpm::bench::read_bandwidth_gbps(pool, kReadBytes, 3);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <checkpoint dir> [--threads N] [--reps R] [--decode N] [--long-ctx C]\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  int threads = mcpm::ThreadPool::default_threads(), reps = 3, n_decode = 32;
  int64_t long_ctx = 4096;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--reps")) reps = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--decode")) n_decode = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--long-ctx")) long_ctx = std::atoll(argv[i + 1]);
  }
  mcpm::BackendOptions bo;
  bo.n_threads = threads;
  auto backend = mcpm::make_cpu_backend(bo);
  mcpm::LoadOptions lo;
  lo.n_ctx = long_ctx + n_decode + 8;
  auto model = mcpm::Model::load(dir, *backend, lo);
  const auto& spec = model->spec();
  std::printf("%s\n", backend->describe().c_str());

  std::vector<int32_t> tokens(size_t(lo.n_ctx));
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int32_t((i * 7919 + 13) % size_t(spec.vocab_size));
  std::vector<float> logits(size_t(spec.vocab_size));

  // Prefill.
  double best_prefill = 1e30;
  for (int r = 0; r < reps; ++r) {
    model->truncate(0);
    const double t0 = mcpm::now_seconds();
    model->forward(tokens.data(), kPrompt);
    best_prefill = std::min(best_prefill, mcpm::now_seconds() - t0);
  }
  // matmul FLOPs per prefill token: 2 per weight, lm_head not included (forward() stops at the final norm)
  const double params = double(model->weight_bytes_per_token()) / 2.0 - double(spec.vocab_size * spec.hidden);
  const double flops_per_token = 2.0 * params;
  std::printf("prefill %lld tokens: %.1f ms  %.1f tokens/s  (~%.0f GFLOP/s matmul)\n", (long long)kPrompt,
              best_prefill * 1e3, double(kPrompt) / best_prefill, flops_per_token * double(kPrompt) / best_prefill * 1e-9);

  const double floor_gbps = read_baseline(threads);
  const double bytes = double(model->weight_bytes_per_token());
  const double lm_head_bytes = double(spec.vocab_size * spec.hidden) * 2.0;  // bf16 (tied embeddings)
  auto decode = [&](int64_t ctx_len, const char* label) {
    double best = 1e30, best_fwd = 0.0, best_logits = 0.0;
    for (int r = 0; r < reps; ++r) {
      model->truncate(0);
      for (int64_t p = 0; p < ctx_len; p += kPrompt) model->forward(tokens.data() + p, std::min(kPrompt, ctx_len - p));
      double t_fwd = 0.0, t_logits = 0.0;
      for (int i = 0; i < n_decode; ++i) {
        const double t0 = mcpm::now_seconds();
        model->forward(tokens.data() + ctx_len + i, 1);
        const double t1 = mcpm::now_seconds();
        model->logits(0, 1, logits.data());
        t_fwd += t1 - t0;
        t_logits += mcpm::now_seconds() - t1;
      }
      if ((t_fwd + t_logits) / n_decode < best) {
        best = (t_fwd + t_logits) / n_decode;
        best_fwd = t_fwd / n_decode;
        best_logits = t_logits / n_decode;
      }
    }
    const double floor_s = bytes / (floor_gbps * 1e9);
    std::printf("%s: %.2f ms/token  %.1f tokens/s  %.1f GB/s of weights  %.0f%% of the bandwidth floor (%.1f GB/s read)\n",
                label, best * 1e3, 1.0 / best, bytes / best * 1e-9, 100.0 * floor_s / best, floor_gbps);
    std::printf("  of which forward(1) %.2f ms (%.1f GB/s of layer weights), logits %.2f ms (%.1f GB/s of lm_head)\n",
                best_fwd * 1e3, (bytes - lm_head_bytes) / best_fwd * 1e-9, best_logits * 1e3,
                lm_head_bytes / best_logits * 1e-9);
    return best;
  };
  const double short_s = decode(kPrompt, "decode @512");
  const double long_s = decode(long_ctx, ("decode @" + std::to_string(long_ctx)).c_str());
  std::printf("decode @%lld vs @512: %.1f%% slower\n", (long long)long_ctx, 100.0 * (long_s / short_s - 1.0));
  return 0;
}
