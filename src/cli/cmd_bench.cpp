// `minicpm bench`: prefill and decode speed on random tokens, next to the memory-bandwidth floor
// (weights + KV bytes read per decoded token / measured bandwidth).
// --depths D1,D2,...: a table of decode and prefill speed at each context depth, dense and (for a
// checkpoint with a sparse_config) InfLLM v2 sparse, with the attention bytes read per token;
// --fill random writes random K/V for the depth instead of running the model over it.
#include <algorithm>
#include <sstream>
#include <vector>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "core/rng.h"
#include "core/timer.h"

namespace mcpm::cli {

namespace {
struct BenchArgs {
  CommonOptions common;
  int64_t n_prompt = 512, n_gen = 128, depth = -1;
  int reps = 3;
  bool json = false;
  std::vector<int64_t> depths;  // table mode
  std::string fill = "model";   // how the depth is filled in table mode: model | random
  bool verify_cost = false;     // speculative verification cost curve
  std::vector<int> verify_m = {1, 2, 3, 4, 6, 8, 12, 16, 24, 32};
  SpecCliOptions spec;          // --spec: plain vs speculative generation on prompts
  std::string prompts_file;
  bool chat = false;
};

// n token ids drawn uniformly from [0, vocab).
std::vector<int32_t> random_token_ids(Rng& rng, int64_t n, int64_t vocab) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = int32_t(rng.next_u64() % uint64_t(vocab));
  return t;
}

// Table mode: per depth, decode n_gen tokens and prefill an n_prompt chunk at that depth, dense and
// sparse, next to the bytes each decoded token reads.
void run_depth_table(BenchArgs& a) {
  const int64_t max_depth = *std::max_element(a.depths.begin(), a.depths.end());
  const int64_t need = max_depth + std::max<int64_t>(a.n_gen, a.n_prompt) + 1;
  Loaded l = load(a.common, NeedTokenizer::No, need, 1);
  Model& m = *l.model;
  const ModelSpec& s = m.spec();
  Rng rng(42);
  auto random_tokens = [&](int64_t n) { return random_token_ids(rng, n, s.vocab_size); };
  std::vector<float> logits(size_t(s.vocab_size));
  const double bw = l.backend->measure_bandwidth_gbs();
  const double wbytes = double(m.weight_bytes_per_token());
  std::printf("model      %s\n", m.dir().c_str());
  std::printf("backend    %s\n", l.backend->describe().c_str());
  std::printf("shape      %s\n", s.describe().c_str());
  std::printf("bandwidth  %.1f GB/s measured read; weights %.1f MB per token; depth filled by %s\n", bw, wbytes / 1e6,
              a.fill == "random" ? "random K/V (--fill random)" : "running the model over random tokens");
  std::printf("%-8s %-7s %12s %12s %10s %10s %10s %10s %12s\n", "depth", "attn", "decode tok/s", "floor tok/s",
              "attn MB/t", "KV MB/t", "comp MB/t", "total MB/t", "prefill tok/s");
  json rows = json::array();
  std::vector<bool> modes = {false};
  if (m.sparse_active()) modes.push_back(true);
  for (int64_t depth : a.depths) {
    m.truncate(0);
    if (a.fill == "random") {
      m.fill_random_context(depth, uint64_t(depth));
    } else {
      m.set_sparse_enabled(true);
      const auto toks = random_tokens(depth);
      for (int64_t i = 0; i < depth; i += m.options().max_batch)
        m.forward(toks.data() + i, std::min<int64_t>(m.options().max_batch, depth - i));
    }
    // Repetitions alternate the modes, so that load changes on a shared machine hit both alike.
    std::vector<double> best_tg(modes.size(), 0.0), best_pp(modes.size(), 0.0);
    for (int r = 0; r < a.reps; ++r)
      for (size_t mi = 0; mi < modes.size(); ++mi) {
        m.set_sparse_enabled(modes[mi]);
        if (r == 0) {  // warm-up step (builds the compressed caches on the first sparse call), rolled back
          const auto warm = random_tokens(1);
          m.forward(warm.data(), 1);
          m.truncate(depth);
        }
        if (a.n_gen > 0) {
          const auto toks = random_tokens(a.n_gen);
          const double t0 = now_seconds();
          for (int64_t i = 0; i < a.n_gen; ++i) {
            m.forward(&toks[size_t(i)], 1);
            m.logits(0, 1, logits.data());
          }
          l.backend->synchronize();
          best_tg[mi] = std::max(best_tg[mi], double(a.n_gen) / (now_seconds() - t0));
          m.truncate(depth);
        }
        if (a.n_prompt > 0) {
          const auto toks = random_tokens(a.n_prompt);
          const double t0 = now_seconds();
          for (int64_t i = 0; i < a.n_prompt; i += m.options().max_batch)
            m.forward(toks.data() + i, std::min<int64_t>(m.options().max_batch, a.n_prompt - i));
          m.logits(0, 1, logits.data());
          l.backend->synchronize();
          best_pp[mi] = std::max(best_pp[mi], double(a.n_prompt) / (now_seconds() - t0));
          m.truncate(depth);
        }
      }
    for (size_t mi = 0; mi < modes.size(); ++mi) {
      m.set_sparse_enabled(modes[mi]);
      const bool is_sparse = m.sparse_step(depth + 1);
      // Bytes per decoded token at the middle of the decode run.
      const int64_t L = depth + std::max<int64_t>(1, a.n_gen / 2);
      double kv = double(m.kv_bytes_per_token()) * double(L), comp = 0;
      if (is_sparse) {
        const AttentionBytes ab = attention_bytes_per_token(s, m.sparse_params(), L, m.options().kv_dtype);
        kv = ab.sparse_kv;
        comp = ab.compressed;
      }
      const double total = wbytes + kv + comp, floor = bw * 1e9 / total;
      std::printf("%-8lld %-7s %12.2f %12.2f %10.1f %10.1f %10.2f %10.1f %12.1f\n", (long long)depth,
                  is_sparse ? "sparse" : "dense", best_tg[mi], floor, (kv + comp) / 1e6, kv / 1e6, comp / 1e6,
                  total / 1e6, best_pp[mi]);
      rows.push_back({{"depth", depth}, {"attention", is_sparse ? "sparse" : "dense"}, {"decode_tok_s", best_tg[mi]},
                      {"floor_tok_s", floor}, {"kv_bytes_per_token", kv}, {"compressed_bytes_per_token", comp},
                      {"weight_bytes_per_token", wbytes}, {"prefill_tok_s", best_pp[mi]}, {"n_prompt", a.n_prompt},
                      {"n_gen", a.n_gen}});
    }
    m.set_sparse_enabled(true);
  }
  std::printf("(decode: -n %lld tokens after the depth; prefill: one -p %lld chunk after the depth; best of %d)\n",
              (long long)a.n_gen, (long long)a.n_prompt, a.reps);
  if (a.json)
    std::printf("%s\n", json({{"rows", rows}, {"bandwidth_gbs", bw}, {"threads", l.backend->n_threads()}}).dump().c_str());
}

// Speculative decoding's cost curve: one verification forward over M tokens (a chain, batch-invariant
// kernels, logits of every row) against one plain decode step, at the given depth. M tokens for the
// price of t(M)/t(1) decode steps bounds what any draft can gain on this machine.
void run_verify_cost(BenchArgs& a) {
  const int max_m = *std::max_element(a.verify_m.begin(), a.verify_m.end());
  MCPM_CHECK(max_m >= 1 && max_m <= 64, "--verify-m values must be in 1..64");
  const int64_t depth = std::max<int64_t>(a.depth, 0);
  a.common.batch = std::max<int64_t>(a.common.batch, max_m);
  Loaded l = load(a.common, NeedTokenizer::No, depth + max_m + 2, max_m);
  Model& m = *l.model;
  const int64_t V = m.spec().vocab_size;
  Rng rng(42);
  const auto ctx = random_token_ids(rng, depth, V);
  for (int64_t i = 0; i < depth; i += m.options().max_batch)
    m.forward(ctx.data() + i, std::min<int64_t>(m.options().max_batch, depth - i));
  std::vector<float> logits(size_t(max_m) * size_t(V));
  auto time_m = [&](int M) {
    double best = 1e30;
    for (int r = 0; r < std::max(a.reps, 1) + 1; ++r) {  // the first run warms up
      const auto toks = random_token_ids(rng, M, V);
      const double t0 = now_seconds();
      if (M == 1) {  // plain decoding's step
        m.forward(toks.data(), 1);
        m.logits(0, 1, logits.data());
      } else {
        Batch b;
        for (int32_t t : toks) b.add(t, 0);
        b.row_invariant = true;
        m.forward(b);
        std::vector<int64_t> rows(static_cast<size_t>(M));
        for (int i = 0; i < M; ++i) rows[size_t(i)] = i;
        m.logits_rows(rows, logits.data());
      }
      l.backend->synchronize();
      if (r > 0) best = std::min(best, now_seconds() - t0);
      m.truncate(0, depth);
    }
    return best;
  };
  const double bw = l.backend->measure_bandwidth_gbs();
  std::printf("model      %s\n", m.dir().c_str());
  std::printf("backend    %s\n", l.backend->describe().c_str());
  std::printf("shape      %s\n", m.spec().describe().c_str());
  std::printf("bandwidth  %.1f GB/s measured read; weights %.1f MB per token; depth %lld\n", bw,
              double(m.weight_bytes_per_token()) / 1e6, (long long)depth);
  std::printf("%-6s %12s %14s %18s\n", "M", "ms/forward", "x decode step", "tok/s if all kept");
  const double t1 = time_m(1);
  json rows = json::array();
  for (int M : a.verify_m) {
    const double t = M == 1 ? t1 : time_m(M);
    std::printf("%-6d %12.3f %14.2f %18.1f\n", M, t * 1e3, t / t1, double(M) / t);
    rows.push_back({{"m", M}, {"seconds", t}, {"relative", t / t1}});
  }
  std::printf("(M = 1 is plain decoding's forward + logits; M > 1 one batch-invariant forward + logits of all M rows; best of %d)\n",
              a.reps);
  if (a.json)
    std::printf("%s\n", json({{"verify_cost", rows}, {"depth", depth}, {"bandwidth_gbs", bw}, {"threads", l.backend->n_threads()}})
                            .dump()
                            .c_str());
}

// --spec ngram|eagle: greedy generation of -n tokens for each prompt (one per line of --prompts, or a
// built-in set), plain and speculative one after the other in the same run; decode tok/s of both,
// mean accepted length, and whether the outputs are identical (they must be).
void run_spec_bench(BenchArgs& a) {
  std::vector<std::string> prompts;
  if (!a.prompts_file.empty()) {
    std::istringstream in(read_file(a.prompts_file));
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) prompts.push_back(line);
    MCPM_CHECK(!prompts.empty(), "{}: no prompts (one per line)", a.prompts_file);
  } else {
    prompts = {"Write a short story about a cat.", "Explain how rain forms.", "List three uses of a paperclip.",
               "Describe the sea at night.", "What is a good breakfast?"};
  }
  Loaded l = load(a.common, NeedTokenizer::Yes, 0, 64);
  const std::unique_ptr<Drafter> drafter = make_drafter(a.spec, l);
  Generator gen(*l.model, l.tokenizer.get());
  double t_plain = 0, t_spec = 0;
  int64_t n_plain = 0, n_spec = 0, same = 0;
  SpecStats total;
  for (const auto& p : prompts) {
    const std::string text = a.chat ? l.tokenizer->apply_chat_template({{"user", p}}, true) : p;
    const std::vector<int32_t> ids = l.tokenizer->encode(text, true);
    GenerateOptions go;
    go.max_tokens = a.n_gen;
    go.sampling.temperature = 0.0f;
    gen.reset();
    const GenerateResult r0 = gen.generate(ids, go);
    configure_spec(a.spec, go, drafter.get());
    gen.reset();
    const GenerateResult r1 = gen.generate(ids, go);
    t_plain += r0.decode_seconds, n_plain += int64_t(r0.tokens.size());
    t_spec += r1.decode_seconds, n_spec += int64_t(r1.tokens.size());
    same += r0.tokens == r1.tokens;
    total.steps += r1.spec.steps, total.emitted += r1.spec.emitted, total.plain_steps += r1.spec.plain_steps;
    total.drafted += r1.spec.drafted, total.draft_seconds += r1.spec.draft_seconds, total.verify_seconds += r1.spec.verify_seconds;
  }
  const double tp = t_plain > 0 ? double(n_plain) / t_plain : 0, ts = t_spec > 0 ? double(n_spec) / t_spec : 0;
  std::printf("model      %s\n", l.model->dir().c_str());
  std::printf("backend    %s\n", l.backend->describe().c_str());
  std::printf("prompts    %zu (%s), greedy, -n %lld\n", prompts.size(), a.prompts_file.empty() ? "built-in" : a.prompts_file.c_str(),
              (long long)a.n_gen);
  std::printf("plain      %8.1f tok/s decode (%lld tokens)\n", tp, (long long)n_plain);
  std::printf("spec %-5s %8.1f tok/s decode (%lld tokens)  x%.2f   mean accepted length %.2f, %lld verify + %lld plain steps, "
              "draft %.2f s, verify %.2f s\n",
              a.spec.mode.c_str(), ts, (long long)n_spec, tp > 0 ? ts / tp : 0.0, total.mean_accepted(), (long long)total.steps,
              (long long)total.plain_steps, total.draft_seconds, total.verify_seconds);
  std::printf("identical  %lld of %zu outputs\n", (long long)same, prompts.size());
  if (a.json)
    std::printf("%s\n", json({{"plain_tok_s", tp}, {"spec_tok_s", ts}, {"speedup", tp > 0 ? ts / tp : 0.0},
                              {"mean_accepted", total.mean_accepted()}, {"identical", same}, {"prompts", prompts.size()},
                              {"mode", a.spec.mode}})
                            .dump()
                            .c_str());
  MCPM_CHECK(same == int64_t(prompts.size()), "speculative output differed from plain decoding on {} prompt(s)",
             int64_t(prompts.size()) - same);
}

void run_bench(BenchArgs& a) {
  if (a.verify_cost) return run_verify_cost(a);
  if (a.spec.mode != "off") return run_spec_bench(a);
  if (!a.depths.empty()) return run_depth_table(a);
  // --ctx N without --depth: decode the last n tokens of an N-token context.
  if (a.depth < 0) a.depth = a.common.ctx > 0 ? std::max<int64_t>(0, a.common.ctx - a.n_gen) : 0;
  const int64_t need = std::max(a.n_prompt, a.depth + a.n_gen) + 1;
  Loaded l = load(a.common, NeedTokenizer::No, need, 1);
  Model& m = *l.model;
  const ModelSpec& s = m.spec();
  Rng rng(42);
  auto random_tokens = [&](int64_t n) { return random_token_ids(rng, n, s.vocab_size); };
  std::vector<float> logits(size_t(s.vocab_size));
  auto run_chunks = [&](const std::vector<int32_t>& toks) {  // one prompt, fed in --batch chunks
    m.set_prefill_end(m.n_past() + int64_t(toks.size()));
    for (size_t i = 0; i < toks.size(); i += size_t(m.options().max_batch)) {
      const int64_t n = std::min<int64_t>(m.options().max_batch, int64_t(toks.size() - i));
      m.forward(toks.data() + i, n);
    }
    m.set_prefill_end(0);
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
  double kv_avg = double(m.kv_bytes_per_token()) * (double(a.depth) + double(a.n_gen) / 2.0);
  const int64_t mid = a.depth + std::max<int64_t>(1, a.n_gen / 2);
  const bool sparse = m.sparse_step(mid);
  if (sparse) {  // InfLLM v2: selected K/V + compressed keys
    const AttentionBytes ab = attention_bytes_per_token(s, m.sparse_params(), mid, m.options().kv_dtype);
    kv_avg = ab.sparse_kv + ab.compressed;
  }
  const double bytes = double(m.weight_bytes_per_token()) + kv_avg;
  const double floor = bw * 1e9 / bytes;
  std::printf("model      %s\n", m.dir().c_str());
  std::printf("backend    %s\n", l.backend->describe().c_str());
  std::printf("shape      %s\n", s.describe().c_str());
  if (a.n_prompt > 0) std::printf("prefill    pp%-6lld %10.1f tok/s\n", (long long)a.n_prompt, best_pp);
  if (a.n_gen > 0)
    std::printf("decode     tg%-6lld %10.1f tok/s  at depth %lld   (%.1f%% of the floor)\n", (long long)a.n_gen, best_tg,
                (long long)a.depth, 100.0 * best_tg / floor);
  std::printf("floor      %.1f tok/s = %.1f GB/s measured read bandwidth / %.1f MB per token (weights %.1f MB + %s %.1f MB)\n",
              floor, bw, bytes / 1e6, double(m.weight_bytes_per_token()) / 1e6,
              sparse ? "InfLLM v2 sparse: selected KV + compressed keys" : "KV", kv_avg / 1e6);
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
  cmd->add_flag("--verify-cost", a->verify_cost,
                "speculative decoding's cost curve: a verification forward over M tokens against one decode step (at --depth)");
  cmd->add_option("--verify-m", a->verify_m, "token counts M for --verify-cost")->delimiter(',');
  add_spec_options(*cmd, a->spec);
  cmd->add_option("--prompts", a->prompts_file, "with --spec: prompts, one per line (default: a built-in set)");
  cmd->add_flag("--chat", a->chat, "with --spec: wrap each prompt in the chat template");
  cmd->add_flag("--json", a->json, "end with a JSON line {prefill_tok_s, decode_tok_s, floor_tok_s, ...}");
  cmd->add_option("--depths", a->depths,
                  "table mode: decode (-n) and prefill (-p chunk) at each of these context depths, dense and InfLLM v2 "
                  "sparse, with the bytes read per token (e.g. 8192,32768,65536,131072)")
      ->delimiter(',');
  cmd->add_option("--fill", a->fill, "table mode: fill each depth by running the model (model) or with random K/V (random)")
      ->check(CLI::IsMember({"model", "random"}));
  cmd->callback([a] { run_bench(*a); });
}

}  // namespace mcpm::cli
