// `minicpm perplexity`: teacher-forced perplexity of a text file (-f) or a token-id file (--tokens)
// in windows of --ctx tokens, windowed as we do (chunks), as Hugging Face's perplexity guide does
// (strided) or as llama-perplexity does (llamacpp); --save-logits writes the base-logits file that
// --kl-base compares another model (a quantized one) against (docs/perplexity.md).
#include <filesystem>
#include <fstream>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "runtime/kl_divergence.h"
#include "runtime/logits_file.h"
#include "runtime/perplexity.h"

namespace mcpm::cli {

namespace {
struct PerplexityArgs {
  CommonOptions common;
  std::string text_file, tokens_file;
  int64_t max_tokens = 0;
  std::string mode = "chunks";
  int64_t stride = 0;
  int64_t chunks = 0;
  std::string save_logits, kl_base;
  bool json = false;
  CLI::Option *ctx_opt = nullptr, *mode_opt = nullptr, *stride_opt = nullptr, *chunks_opt = nullptr;
};

std::vector<int32_t> read_token_file(const std::string& path) {
  std::ifstream f(path);
  MCPM_CHECK(f, "{}: cannot open", path);
  std::vector<int32_t> ids;
  std::string word;
  while (f >> word) {
    size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(word, &used);
    } catch (...) {
      used = 0;
    }
    MCPM_CHECK(used == word.size() && v >= 0 && v <= INT32_MAX, "{}: '{}' is not a token id (expected whitespace-separated non-negative integers)",
               path, word);
    ids.push_back(int32_t(v));
  }
  return ids;
}

// With --kl-base the windowing comes from the base file; flags that say otherwise are an error.
void check_against_base(const PerplexityArgs& a, const LogitsFileHeader& h, const std::string& path) {
  const PplOptions& o = h.options;
  if (a.ctx_opt->count() && a.common.ctx != o.window)
    fail("--kl-base {}: the base logits were scored with --ctx {}, not {} (omit --ctx to use the file's)", path,
         o.window, a.common.ctx);
  if (a.mode_opt->count() && parse_ppl_mode(a.mode) != o.mode)
    fail("--kl-base {}: the base logits were scored with --ppl-mode {}, not {}", path, ppl_mode_name(o.mode), a.mode);
  if (a.stride_opt->count() && o.mode == PplMode::Strided && a.stride != o.stride)
    fail("--kl-base {}: the base logits were scored with --stride {}, not {}", path, o.stride, a.stride);
  if (a.chunks_opt->count() && a.chunks != o.max_windows)
    fail("--kl-base {}: the base logits were scored with --chunks {}, not {}", path, o.max_windows, a.chunks);
}

void run_perplexity(PerplexityArgs& a) {
  MCPM_CHECK(a.save_logits.empty() || a.kl_base.empty(), "perplexity: give --save-logits or --kl-base, not both");
  std::unique_ptr<LogitsFileReader> base;
  if (!a.kl_base.empty()) {
    base = std::make_unique<LogitsFileReader>(a.kl_base);
    check_against_base(a, base->header(), a.kl_base);
    a.common.ctx = base->header().options.window;
  } else {
    MCPM_CHECK(a.text_file.empty() != a.tokens_file.empty(), "perplexity: give exactly one of -f TEXT or --tokens FILE");
  }
  MCPM_CHECK(a.text_file.empty() || a.tokens_file.empty(), "perplexity: give at most one of -f TEXT or --tokens FILE");
  if (a.common.ctx <= 0) a.common.ctx = 512;
  const int64_t window = a.common.ctx;
  a.common.batch = std::min(a.common.batch, window);
  const bool have_input = !a.text_file.empty() || !a.tokens_file.empty();
  Loaded l = load(a.common, a.text_file.empty() ? NeedTokenizer::No : NeedTokenizer::Yes, 0, 64);
  const int64_t V = l.model->spec().vocab_size;

  std::vector<int32_t> tokens;
  if (have_input)
    tokens = a.text_file.empty() ? read_token_file(a.tokens_file) : l.tokenizer->encode(read_file(a.text_file), true);
  PplOptions o;
  if (base) {
    const LogitsFileHeader& h = base->header();
    check_logits_base(h, a.kl_base, V, l.model->n_ctx());
    if (have_input) {
      if (a.max_tokens > 0 && int64_t(tokens.size()) > a.max_tokens) tokens.resize(size_t(a.max_tokens));
      MCPM_CHECK(hash_tokens(tokens) == h.tokens_hash && int64_t(tokens.size()) == h.n_tokens,
                 "--kl-base {}: the input gives {} tokens that differ from the file's {} (another tokenizer, text or "
                 "--max-tokens?); omit -f/--tokens to use the file's tokens",
                 a.kl_base, tokens.size(), h.n_tokens);
    }
    tokens = base->tokens();
    o = h.options;
    if (o.mode == PplMode::LlamaCpp && o.bos_id >= 0 && l.tokenizer && l.tokenizer->bos_id() >= 0)
      MCPM_CHECK(o.bos_id == l.tokenizer->bos_id(), "--kl-base {}: the base used BOS id {}, this tokenizer's is {}",
                 a.kl_base, o.bos_id, l.tokenizer->bos_id());
  } else {
    if (a.max_tokens > 0 && int64_t(tokens.size()) > a.max_tokens) tokens.resize(size_t(a.max_tokens));
    o.mode = parse_ppl_mode(a.mode);
    o.window = window;
    o.stride = a.stride;
    o.max_windows = a.chunks;
    MCPM_CHECK(a.stride >= 0, "perplexity: --stride must be >= 0 (got {})", a.stride);
    if (o.mode == PplMode::Strided && o.stride == 0) o.stride = std::max<int64_t>(1, window / 2);
    if (o.mode == PplMode::LlamaCpp) {
      // llama.cpp replaces each window's first token by BOS when the vocabulary adds one.
      if (l.tokenizer) o.bos_id = l.tokenizer->adds_bos() ? l.tokenizer->bos_id() : -1;
      else o.bos_id = l.model->spec().bos_id;
    }
  }
  for (int32_t t : tokens) MCPM_CHECK(t < V, "token id {} is outside the model vocabulary ({})", t, V);

  const std::vector<PplWindow> plan = plan_windows(int64_t(tokens.size()), o);
  std::unique_ptr<LogitsFileWriter> writer;
  if (!a.save_logits.empty()) {
    const std::string label = std::filesystem::path(l.model->dir()).filename().string();
    writer = std::make_unique<LogitsFileWriter>(a.save_logits, o, V, tokens, count_scored(plan), label);
    if (!a.common.quiet)
      std::fprintf(stderr, "writing base logits to %s (%.1f MB)\n", a.save_logits.c_str(),
                   double(kLogitsHeaderBytes + tokens.size() * 4 + size_t(count_scored(plan)) * logits_record_bytes(V)) / 1e6);
  }
  KlAccumulator kl;
  ScoredTokenFn on_token;
  if (writer) on_token = [&](int64_t, int32_t, const float* logits, double nll) { writer->add(logits, nll); };
  if (base)
    on_token = [&](int64_t, int32_t target, const float* logits, double) {
      kl.add(kl_token(logits, V, target, base->next()));
    };

  const PerplexityResult r = perplexity(
      *l.model, tokens, o,
      [&](int64_t w, int64_t n, const PerplexityResult& cur) {
        if (a.common.quiet) return;
        if (base && kl.count() > 0)
          std::fprintf(stderr, "\r[%lld/%lld] ppl %.4f  mean KLD %.6f", (long long)(w + 1), (long long)n, cur.ppl(),
                       kl.mean_kld());
        else
          std::fprintf(stderr, "\r[%lld/%lld] ppl %.4f", (long long)(w + 1), (long long)n, cur.ppl());
      },
      on_token);
  if (!a.common.quiet) std::fprintf(stderr, "\n");
  if (writer) writer->finish();
  std::string scheme = fmt::format("{} windows of {}", r.n_windows, window);
  if (o.mode == PplMode::Strided) scheme += fmt::format(", stride {}", o.stride);
  if (o.mode == PplMode::LlamaCpp) scheme += ", second halves scored";
  std::printf("perplexity: %.4f +/- %.4f (%lld tokens predicted, %s; mode %s)\n", r.ppl(), r.ppl_stderr(),
              (long long)r.n_predicted, scheme.c_str(), ppl_mode_name(o.mode));
  json out{{"tokens", r.n_predicted}, {"nll", r.mean_nll()}, {"ppl", r.ppl()}, {"ppl_stderr", r.ppl_stderr()},
           {"mode", ppl_mode_name(o.mode)}, {"window", window}, {"windows", r.n_windows}};
  if (o.mode == PplMode::Strided) out["stride"] = o.stride;
  if (base) {
    base->finish();  // checksum: a corrupted base file fails before any statistic is shown
    const KlSummary s = kl.summarize();
    std::printf("\nKL divergence against %s (base model %s)\n\n%s", a.kl_base.c_str(),
                base->header().label.empty() ? "?" : base->header().label.c_str(), format_kl_report(s).c_str());
    out["kl"] = kl_summary_json(s);
  }
  if (a.json) std::printf("%s\n", out.dump().c_str());
}
}  // namespace

void register_perplexity(CLI::App& app) {
  auto a = std::make_shared<PerplexityArgs>();
  CLI::App* cmd = app.add_subcommand("perplexity", "teacher-forced perplexity of a text or token file; KL divergence against base logits");
  add_common_options(*cmd, a->common, false);
  a->ctx_opt = cmd->add_option("-c,--ctx", a->common.ctx, "tokens per window (HF max_length, llama.cpp n_ctx); default 512");
  cmd->add_option("-f,--file", a->text_file, "text file (tokenized with the model's tokenizer, BOS first)");
  cmd->add_option("--tokens", a->tokens_file, "file of whitespace-separated token ids (no tokenizer needed)");
  cmd->add_option("--max-tokens", a->max_tokens, "use only the first N tokens");
  a->mode_opt = cmd->add_option("--ppl-mode", a->mode,
                                "windowing: chunks (consecutive windows, all tokens scored; default), strided (Hugging "
                                "Face guide: --stride, only new tokens scored), llamacpp (llama-perplexity: BOS per "
                                "window, second half scored)")
                    ->check(CLI::IsMember({"chunks", "strided", "hf", "llamacpp", "llama.cpp", "llama"}));
  a->stride_opt = cmd->add_option("--stride", a->stride, "strided mode: tokens between window starts (default ctx/2)");
  a->chunks_opt = cmd->add_option("--chunks", a->chunks, "score only the first N windows (0 = all)");
  cmd->add_option("--save-logits", a->save_logits,
                  "write the base logits (tokens, windowing, fp16 log-probs of every scored token) to FILE");
  cmd->add_option("--kl-base", a->kl_base,
                  "KL divergence, same-top-1 rate and PPL ratio against the base logits in FILE (its tokens and "
                  "windowing are used; -f/--tokens optional, checked against it)");
  cmd->add_flag("--json", a->json, "end with a JSON line {\"tokens\",\"nll\",\"ppl\",...,\"kl\"}");
  cmd->callback([a] { run_perplexity(*a); });
}

}  // namespace mcpm::cli
