// Engine-level cost of one continuous-batching step: S sequences (KV slots) each decode one token in
// one Model::forward(const Batch&) + logits_rows, for S = 1, 2, 4, 8, 16; row-invariant (the server's
// default) and ordinary batches, alternated so both see the same machine load.
//   bench_batch_decode MODEL_DIR [THREADS (2)] [STEPS (16)]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/rng.h"
#include "model/model.h"

using namespace mcpm;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_batch_decode MODEL_DIR [THREADS] [STEPS]\n");
    return 2;
  }
  const int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  const int steps = argc > 3 ? std::atoi(argv[3]) : 16;
  auto be = make_cpu_backend({threads, true, 0});
  LoadOptions lo;
  lo.n_ctx = 256;
  lo.n_seq = 16;
  lo.max_logit_rows = 16;
  auto m = Model::load(argv[1], *be, lo);
  const int64_t V = m->spec().vocab_size;
  std::vector<float> logits(size_t(16 * V));
  Rng rng(1);
  auto now = [] { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); };
  std::printf("%s, %d threads, %d steps per point, context 32 per sequence\n", argv[1], threads, steps);
  std::printf("%4s  %22s  %22s\n", "S", "row-invariant tok/s", "ordinary tok/s");
  for (int S : {1, 2, 4, 8, 16}) {
    double tps[2] = {0, 0};
    for (int rep = 0; rep < 2; ++rep)
      for (int inv = 1; inv >= 0; --inv) {
        for (int s = 0; s < S; ++s) {  // a 32-token context per sequence
          m->truncate(s, 0);
          Batch b;
          for (int i = 0; i < 32; ++i) b.add(int32_t(rng.next_u64() % uint64_t(V)), s);
          m->forward(b);
        }
        std::vector<int64_t> rows(static_cast<size_t>(S));
        for (int s = 0; s < S; ++s) rows[size_t(s)] = s;
        const double t0 = now();
        for (int k = 0; k < steps; ++k) {
          Batch b;
          b.row_invariant = inv == 1;
          for (int s = 0; s < S; ++s) b.add(int32_t(rng.next_u64() % uint64_t(V)), s);
          m->forward(b);
          m->logits_rows(rows, logits.data());
        }
        const double t = now() - t0;
        tps[inv == 1 ? 0 : 1] = std::max(tps[inv == 1 ? 0 : 1], double(S) * steps / t);  // best of 2
      }
    std::printf("%4d  %22.1f  %22.1f\n", S, tps[0], tps[1]);
  }
  return 0;
}
