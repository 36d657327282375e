// `minicpm data ngram`: the interpolated Kneser-Ney n-gram baseline (data/ngram_lm.h) counted on
// training shards and scored on held-out shards, the figure a trained model has to beat on the same
// tokens (`minicpm train --eval-only` scores the model on the same shards).
#include <cmath>
#include <cstdio>

#include "cli/commands.h"
#include "core/error.h"
#include "core/json.h"
#include "data/ngram_lm.h"
#include "data/shard.h"

namespace mcpm::cli {

namespace {
struct NgramArgs {
  std::vector<std::string> train, eval;
  int order = 3;
  bool json_out = false;
};

// A shard's ids (and mask) as int32 / u8.
void read_shard(const data::TokenShard& s, std::vector<int32_t>& ids, std::vector<uint8_t>& mask) {
  ids.resize(size_t(s.size()));
  mask.resize(size_t(s.size()));
  if (s.size()) s.read(0, s.size(), ids.data(), mask.data());
}

void run_ngram(const NgramArgs& a) {
  MCPM_CHECK(a.order >= 1 && a.order <= data::NgramLM::kMaxOrder, "--order {}: must be in 1..{}", a.order,
             data::NgramLM::kMaxOrder);
  int64_t V = 0;
  for (const auto& p : a.train) V = std::max<int64_t>(V, data::TokenShard(p).header().vocab_size);
  for (const auto& p : a.eval) {
    const data::TokenShard s(p);
    MCPM_CHECK(int64_t(s.header().vocab_size) == V, "{}: vocabulary size {} differs from the training shards' {}", p,
               s.header().vocab_size, V);
  }
  std::vector<data::NgramLM> lms;
  for (int k = 1; k <= a.order; ++k) lms.emplace_back(k, V);
  std::vector<int32_t> ids;
  std::vector<uint8_t> mask;
  int64_t n_train = 0;
  for (const auto& p : a.train) {
    const data::TokenShard s(p);
    read_shard(s, ids, mask);
    for (auto& lm : lms) lm.add_stream(ids.data(), int64_t(ids.size()));
    n_train += int64_t(ids.size());
  }
  for (auto& lm : lms) lm.finalize();
  std::printf("n-gram baselines (interpolated Kneser-Ney) counted on %lld tokens of %zu shard(s), vocabulary %lld\n",
              (long long)n_train, a.train.size(), (long long)V);
  json results = json::array();
  for (const auto& p : a.eval) {
    const data::TokenShard s(p);
    read_shard(s, ids, mask);
    std::printf("%s:", p.c_str());
    json row = {{"eval", p}};
    for (const auto& lm : lms) {
      const data::NgramScore sc = score_stream(lm, ids.data(), mask.data(), int64_t(ids.size()));
      std::printf("  %d-gram ppl %.3f", lm.order(), std::exp(sc.nats));
      row[fmt::format("{}-gram", lm.order())] = {{"nats", sc.nats}, {"ppl", std::exp(sc.nats)}, {"tokens", sc.n}};
    }
    std::printf("\n");
    results.push_back(row);
  }
  if (a.json_out) std::printf("%s\n", results.dump().c_str());
}
}  // namespace

void register_ngram(CLI::App& data) {
  auto a = std::make_shared<NgramArgs>();
  CLI::App* c = data.add_subcommand("ngram", "n-gram baseline perplexities (interpolated Kneser-Ney) of held-out shards");
  c->add_option("--train", a->train, "shards to count (each one stream)")->required()->delimiter(',');
  c->add_option("--eval", a->eval, "held-out shards to score (masked tokens only when a shard has a mask)")
      ->required()
      ->delimiter(',');
  c->add_option("--order", a->order, "highest order (every order from 1 up is reported)")->capture_default_str();
  c->add_flag("--json", a->json_out, "end with a JSON line of the results");
  c->callback([a] { run_ngram(*a); });
}

}  // namespace mcpm::cli
