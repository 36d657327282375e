// `minicpm data freq-vocab`: an FR-Spec draft vocabulary from the user's own corpus — the n most
// frequent tokens (EOS and the chat-control tokens forced in), written as torch.save would write the
// list (freq_{n}.pt, loadable by CPM.cu / FR-Spec and by --fr-vocab), with a coverage report: the share
// of corpus tokens the first k entries cover, for several k. Streams the inputs with a progress bar.
#include <cstdio>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "data/progress.h"
#include "data/text_reader.h"
#include "io/torch_file.h"
#include "runtime/fr_vocab.h"
#include "tokenizer/tokenizer.h"

namespace mcpm::cli {

namespace {
struct FreqVocabArgs {
  std::vector<std::string> inputs;
  std::string tokenizer, out, split = "line", field = "text";
  int64_t n = 16384, max_docs = 0;
  bool no_progress = false, json_out = false;
};

void run_freq_vocab(const FreqVocabArgs& a) {
  const auto tok = Tokenizer::load(a.tokenizer);
  const int64_t V = tok->vocab_size();
  MCPM_CHECK(a.n >= 1 && a.n <= V, "-n {}: the vocabulary size must be in 1..{} (the tokenizer's)", a.n, V);
  std::vector<uint64_t> counts(static_cast<size_t>(V), 0);
  uint64_t docs = 0, total_bytes = 0;
  for (const auto& p : a.inputs) total_bytes += data::DocumentReader(p, data::parse_split_mode(a.split), a.field).total_bytes();
  data::ProgressBar bar("counting", total_bytes, "B", !a.no_progress);
  uint64_t done = 0;
  for (const auto& p : a.inputs) {
    data::DocumentReader r(p, data::parse_split_mode(a.split), a.field);
    std::string doc;
    while ((a.max_docs == 0 || int64_t(docs) < a.max_docs) && r.next(doc)) {
      for (int32_t id : tok->encode(doc, false)) ++counts[size_t(id)];
      ++docs;
      bar.update(done + r.bytes_read());
    }
    done += r.total_bytes();
  }
  bar.finish();
  // Forced in: every end-of-sequence id and the chat-control tokens the tokenizer has.
  const std::vector<int32_t> forced = fr_forced_ids(*tok);
  const std::vector<int32_t> vocab = freq_vocab_from_counts(counts, a.n, forced);
  uint64_t total = 0;
  for (uint64_t c : counts) total += c;
  MCPM_CHECK(total > 0, "no tokens in the inputs");
  write_torch_id_list(a.out, std::vector<int64_t>(vocab.begin(), vocab.end()));
  std::printf("%s: %lld tokens from %llu documents (%llu corpus tokens, %lld distinct)\n", a.out.c_str(), (long long)a.n,
              (unsigned long long)docs, (unsigned long long)total,
              (long long)std::count_if(counts.begin(), counts.end(), [](uint64_t c) { return c > 0; }));
  std::printf("coverage (share of corpus tokens inside the first k entries):\n");
  json cov = json::array();
  for (int64_t k : {int64_t(1024), int64_t(2048), int64_t(4096), int64_t(8192), int64_t(16384), int64_t(32768), a.n}) {
    if (k > a.n || (k == a.n && cov.size() && cov.back()["k"] == k)) continue;
    const double c = fr_coverage(counts, vocab, k);
    std::printf("  k = %6lld  %6.2f%%\n", (long long)k, 100.0 * c);
    cov.push_back({{"k", k}, {"coverage", c}});
  }
  if (a.json_out)
    std::printf("%s\n", json({{"out", a.out}, {"n", a.n}, {"documents", docs}, {"corpus_tokens", total}, {"coverage", cov}})
                            .dump()
                            .c_str());
}
}  // namespace

void register_freq_vocab(CLI::App& data) {
  auto a = std::make_shared<FreqVocabArgs>();
  CLI::App* c = data.add_subcommand("freq-vocab", "FR-Spec draft vocabulary: the most frequent tokens of a corpus (freq_N.pt)");
  c->add_option("-i,--input,inputs", a->inputs, "corpus files (*.txt, *.jsonl, *.json)")->required();
  c->add_option("--tokenizer", a->tokenizer, "tokenizer folder (or the model folder)")->required();
  c->add_option("-n,--size", a->n, "entries in the vocabulary")->capture_default_str();
  c->add_option("-o,--out", a->out, "file to write (torch.save list, e.g. freq_16384.pt)")->required();
  c->add_option("--split", a->split, "text files: paragraph, line or file")->capture_default_str();
  c->add_option("--field", a->field, "JSON field holding the text")->capture_default_str();
  c->add_option("--max-docs", a->max_docs, "stop after this many documents (0 = all)");
  c->add_flag("--no-progress", a->no_progress, "no progress bar");
  c->add_flag("--json", a->json_out, "end with a JSON summary line");
  c->callback([a] { run_freq_vocab(*a); });
}

}  // namespace mcpm::cli
