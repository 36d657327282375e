// `minicpm bench`: prefill and decode speed on random tokens, next to the memory-bandwidth floor
// (weights + KV bytes read per decoded token / measured bandwidth).
#include <algorithm>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/timer.h"

namespace mcpm::cli {

namespace {
struct BenchArgs {
  CommonOptions common;
  int64_t n_prompt = 512, n_gen = 128, depth = -1;
  int reps = 3;
  bool json = false;
};

void run_bench(BenchArgs& a) {
  // --ctx N without --depth: decode the last n tokens of an N-token context.
  if (a.depth < 0) a.depth = a.common.ctx > 0 ? std::max<int64_t>(0, a.common.ctx - a.n_gen) : 0;
  const int64_t need = std::max(a.n_prompt, a.depth + a.n_gen) + 1;
  Loaded l = load(a.common, NeedTokenizer::No, need, 1);
  Model& m = *l.model;
  const ModelSpec& s = m.spec();
  Rng rng(42);
  auto random_tokens = [&](int64_t n) {
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (auto& x : t) x = int32_t(rng.next_u64() % uint64_t(s.vocab_size));
    return t;
  };
  std::vector<float> logits(size_t(s.vocab_size));
  auto run_chunks = [&](const std::vector<int32_t>& toks) {
    for (size_t i = 0; i < toks.size(); i += size_t(m.options().max_batch)) {
      const int64_t n = std::min<int64_t>(m.options().max_batch, int64_t(toks.size() - i));
      m.forward(toks.data() + i, n);
    }
    m.logits(0, 1, logits.data());
  };
  // warm-up
  m.truncate(0);
  run_chunks(random_tokens(std::min<int64_t>(a.n_prompt > 0 ? a.n_prompt : 8, 64)));

  double best_pp = 0, best_tg = 0;
  for (int r = 0; r < a.reps; ++r) {
    if (a.n_prompt > 0) {
      const auto toks = random_tokens(a.n_prompt);
      m.truncate(0);
      const double t0 = now_seconds();
      run_chunks(toks);
      l.backend->synchronize();
      best_pp = std::max(best_pp, double(a.n_prompt) / (now_seconds() - t0));
    }
    if (a.n_gen > 0) {
      m.truncate(0);
      if (a.depth > 0) run_chunks(random_tokens(a.depth));
      const auto toks = random_tokens(a.n_gen);
      const double t0 = now_seconds();
      for (int64_t i = 0; i < a.n_gen; ++i) {
        m.forward(&toks[size_t(i)], 1);
        m.logits(0, 1, logits.data());
      }
      l.backend->synchronize();
      best_tg = std::max(best_tg, double(a.n_gen) / (now_seconds() - t0));
    }
  }
  const double bw = l.backend->measure_bandwidth_gbs();
  const double kv_avg = double(m.kv_bytes_per_token()) * (double(a.depth) + double(a.n_gen) / 2.0);
  const double bytes = double(m.weight_bytes_per_token()) + kv_avg;
  const double floor = bw * 1e9 / bytes;
  std::printf("model      %s\n", m.dir().c_str());
  std::printf("backend    %s\n", l.backend->describe().c_str());
  std::printf("shape      %s\n", s.describe().c_str());
  if (a.n_prompt > 0) std::printf("prefill    pp%-6lld %10.1f tok/s\n", (long long)a.n_prompt, best_pp);
  if (a.n_gen > 0)
    std::printf("decode     tg%-6lld %10.1f tok/s  at depth %lld   (%.1f%% of the floor)\n", (long long)a.n_gen, best_tg,
                (long long)a.depth, 100.0 * best_tg / floor);
  std::printf("floor      %.1f tok/s = %.1f GB/s measured read bandwidth / %.1f MB per token (weights %.1f MB + KV %.1f MB)\n",
              floor, bw, bytes / 1e6, double(m.weight_bytes_per_token()) / 1e6, kv_avg / 1e6);
  if (a.json)
    std::printf("%s\n", json({{"prefill_tok_s", best_pp}, {"decode_tok_s", best_tg}, {"floor_tok_s", floor},
                              {"bandwidth_gbs", bw}, {"bytes_per_token", bytes}, {"depth", a.depth},
                              {"n_prompt", a.n_prompt}, {"n_gen", a.n_gen}, {"threads", l.backend->n_threads()}})
                            .dump()
                            .c_str());
}
}  // namespace

void register_bench(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand("bench", "prefill/decode tokens per second next to the memory-bandwidth floor");
  add_common_options(*cmd, a->common);
  cmd->add_option("-p,--n-prompt", a->n_prompt, "prompt tokens for the prefill test (0 = skip)");
  cmd->add_option("-n,--n-gen", a->n_gen, "tokens for the decode test (0 = skip)");
  cmd->add_option("-d,--depth", a->depth, "tokens already in the context before the decode test (default: --ctx minus -n)");
  cmd->add_option("-r,--reps", a->reps, "repetitions (best is reported)");
  cmd->add_flag("--json", a->json, "end with a JSON line {prefill_tok_s, decode_tok_s, floor_tok_s, ...}");
  cmd->callback([a] { run_bench(*a); });
}

}  // namespace mcpm::cli
