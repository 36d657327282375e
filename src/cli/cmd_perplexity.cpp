// `minicpm perplexity`: teacher-forced perplexity of a text file (-f) or a token-id file (--tokens)
// in windows of --ctx tokens.
#include <fstream>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "runtime/perplexity.h"

namespace mcpm::cli {

namespace {
struct PerplexityArgs {
  CommonOptions common;
  std::string text_file, tokens_file;
  int64_t max_tokens = 0;
  bool json = false;
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

void run_perplexity(PerplexityArgs& a) {
  MCPM_CHECK(a.text_file.empty() != a.tokens_file.empty(), "perplexity: give exactly one of -f TEXT or --tokens FILE");
  if (a.common.ctx <= 0) a.common.ctx = 512;
  const int64_t window = a.common.ctx;
  a.common.batch = std::min(a.common.batch, window);
  Loaded l = load(a.common, a.text_file.empty() ? NeedTokenizer::No : NeedTokenizer::Yes, 0, 64);
  std::vector<int32_t> tokens = a.text_file.empty() ? read_token_file(a.tokens_file) : l.tokenizer->encode(read_file(a.text_file), true);
  for (int32_t t : tokens)
    MCPM_CHECK(t < l.model->spec().vocab_size, "token id {} is outside the model vocabulary ({})", t, l.model->spec().vocab_size);
  if (a.max_tokens > 0 && int64_t(tokens.size()) > a.max_tokens) tokens.resize(size_t(a.max_tokens));
  const PerplexityResult r = perplexity(*l.model, tokens, window, [&](int64_t w, int64_t n, const PerplexityResult& cur) {
    if (!a.common.quiet) std::fprintf(stderr, "\r[%lld/%lld] ppl %.4f", (long long)(w + 1), (long long)n, cur.ppl());
  });
  if (!a.common.quiet) std::fprintf(stderr, "\n");
  std::printf("perplexity: %.4f +/- %.4f (%lld tokens predicted, %lld windows of %lld)\n", r.ppl(), r.ppl_stderr(),
              (long long)r.n_predicted, (long long)r.n_windows, (long long)window);
  if (a.json) std::printf("%s\n", json({{"tokens", r.n_predicted}, {"nll", r.mean_nll()}, {"ppl", r.ppl()}}).dump().c_str());
}
}  // namespace

void register_perplexity(CLI::App& app) {
  auto a = std::make_shared<PerplexityArgs>();
  CLI::App* cmd = app.add_subcommand("perplexity", "teacher-forced perplexity of a text or token file");
  add_common_options(*cmd, a->common);
  cmd->add_option("-f,--file", a->text_file, "text file (tokenized with the model's tokenizer, BOS first)");
  cmd->add_option("--tokens", a->tokens_file, "file of whitespace-separated token ids (no tokenizer needed)");
  cmd->add_option("--max-tokens", a->max_tokens, "use only the first N tokens");
  cmd->add_flag("--json", a->json, "end with a JSON line {\"tokens\",\"nll\",\"ppl\"}");
  cmd->callback([a] { run_perplexity(*a); });
}

}  // namespace mcpm::cli
