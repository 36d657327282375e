// `minicpm data`: the data pipeline in front of `minicpm train`.
//   data train-tokenizer   SentencePiece BPE tokenizer folder (MiniCPM4 style, ChatML template)
//   data encode            text / JSONL -> token shard (+ held-out shard)
//   data sft               instruction / chat records -> token shard with an assistant-only loss mask
//   data info              header and statistics of shards
//   data freq-vocab        FR-Spec draft vocabulary of a corpus (cmd_freq_vocab.cpp)
//   data ngram             n-gram baseline perplexities of held-out shards (cmd_ngram.cpp)
//   data verify            annealing probe of candidate data (cmd_verify.cpp, anneal_probe.h)
//   data clean             web-text cleaning pipeline (cmd_data_clean.cpp)
//   data train-classifier / score   fastText quality classifier (cmd_data_classifier.cpp)
#include <cstdio>

#include "cli/commands.h"
#include "core/error.h"
#include "data/encode.h"
#include "data/progress.h"
#include "data/sft.h"
#include "data/shard.h"
#include "data/tokenizer_trainer.h"
#include "tokenizer/tokenizer.h"

namespace mcpm::cli {

namespace {

struct DataArgs {
  std::vector<std::string> inputs;
  std::string out, eval_out, tokenizer, split = "paragraph", field = "text", format = "auto", system;
  double eval_fraction = 0;
  int vocab_size = 4096, threads = 2;
  int64_t max_sentences = 2000000, max_tokens = 0, show = 0;
  bool eos = false, no_progress = false;
};

void add_inputs(CLI::App* c, DataArgs& a) {
  c->add_option("-i,--input,inputs", a.inputs, "input files (*.txt, *.jsonl, *.json)")->required();
}

// The options of a job that writes a training shard and an optional held-out one (encode, sft).
void add_shard_job_options(CLI::App* c, DataArgs& a, const char* tokenizer_help, const char* unit) {
  add_inputs(c, a);
  c->add_option("--tokenizer", a.tokenizer, tokenizer_help)->required();
  c->add_option("-o,--out", a.out, "training shard to write")->required();
  c->add_option("--eval-out", a.eval_out, "held-out shard to write");
  c->add_option("--eval-fraction", a.eval_fraction, fmt::format("fraction of each input's {} (its tail) held out", unit));
  c->add_flag("--no-progress", a.no_progress, "no progress bar");
}

void fill_shard_job(const DataArgs& a, data::ShardJobOptions& o) {
  o.inputs = a.inputs;
  o.tokenizer_dir = a.tokenizer;
  o.out = a.out;
  o.eval_out = a.eval_out;
  o.eval_fraction = a.eval_fraction;
  o.progress = !a.no_progress;
}

void run_info(const DataArgs& a) {
  std::unique_ptr<Tokenizer> tok;
  if (!a.tokenizer.empty()) tok = Tokenizer::load(a.tokenizer);
  for (const auto& path : a.inputs) {
    const data::TokenShard s(path);
    const auto& h = s.header();
    uint64_t masked = 0;
    for (uint64_t i = 0; s.has_mask() && i < s.size(); ++i) masked += s.mask(i);
    std::printf("%s: version %u, %u-byte tokens, vocab %u, %llu tokens, %llu documents, bos %d, eos %d", path.c_str(),
                h.version, h.token_bytes, h.vocab_size, (unsigned long long)h.n_tokens, (unsigned long long)h.n_docs,
                h.bos_id, h.eos_id);
    if (s.has_mask())
      std::printf(", loss mask: %llu targets (%.1f%%)", (unsigned long long)masked,
                  100.0 * double(masked) / double(std::max<uint64_t>(1, s.size())));
    std::printf("\n");
    if (a.show > 0 && tok) {
      std::vector<int32_t> ids(size_t(std::min<uint64_t>(uint64_t(a.show), s.size())));
      s.read(0, ids.size(), ids.data());
      std::printf("first %zu tokens: %s\n", ids.size(), tok->decode(ids, false).c_str());
    }
  }
}

}  // namespace

void register_data(CLI::App& app) {
  auto a = std::make_shared<DataArgs>();
  CLI::App* data = app.add_subcommand("data", "data pipeline: train a tokenizer, encode text and SFT records into shards, clean web text, quality classifier");
  data->require_subcommand(1);

  CLI::App* tt = data->add_subcommand("train-tokenizer", "train a SentencePiece BPE tokenizer (byte fallback, split digits, ChatML tokens)");
  add_inputs(tt, *a);
  tt->add_option("-o,--out", a->out, "tokenizer folder to write")->required();
  tt->add_option("--vocab-size", a->vocab_size, "vocabulary size (incl. 256 byte pieces and 13 special tokens)")->capture_default_str();
  tt->add_option("--split", a->split, "text files: paragraph, line or file")->capture_default_str();
  tt->add_option("--field", a->field, "JSON field holding the text")->capture_default_str();
  tt->add_option("--max-sentences", a->max_sentences, "sentences sampled for training")->capture_default_str();
  tt->add_option("-t,--threads", a->threads, "threads")->capture_default_str();
  tt->add_flag("--no-progress", a->no_progress, "no progress bar");
  tt->callback([a] {
    data::TokenizerTrainOptions o;
    o.inputs = a->inputs;
    o.out_dir = a->out;
    o.vocab_size = a->vocab_size;
    o.split = data::parse_split_mode(a->split);
    o.field = a->field;
    o.max_sentences = a->max_sentences;
    o.threads = a->threads;
    o.progress = !a->no_progress;
    std::printf("%s\n", data::train_tokenizer(o).c_str());
  });

  register_freq_vocab(*data);
  register_ngram(*data);
  register_verify(*data);
  register_data_clean(*data);
  register_data_classifier(*data);

  CLI::App* enc = data->add_subcommand("encode", "encode text / JSONL documents into a token shard (streaming)");
  add_shard_job_options(enc, *a, "tokenizer folder (or a model folder with tokenizer files)", "documents");
  enc->add_option("--split", a->split, "text files: paragraph, line or file")->capture_default_str();
  enc->add_option("--field", a->field, "JSON field holding the text")->capture_default_str();
  enc->add_flag("--eos", a->eos, "append </s> to every document");
  enc->callback([a] {
    data::EncodeOptions o;
    fill_shard_job(*a, o);
    o.split = data::parse_split_mode(a->split);
    o.field = a->field;
    o.append_eos = a->eos;
    std::printf("%s\n", data::encode_shards(o).summary().c_str());
  });

  CLI::App* sft = data->add_subcommand("sft", "render instruction / chat records with the chat template into a masked shard");
  add_shard_job_options(sft, *a, "tokenizer folder (its chat template is used)", "records");
  sft->add_option("--format", a->format, "auto, alpaca, sharegpt or qa")->capture_default_str();
  sft->add_option("--system", a->system, "system message added to every conversation");
  sft->add_option("--max-tokens", a->max_tokens, "truncate longer conversations (0 = no limit)");
  sft->callback([a] {
    data::SftOptions o;
    fill_shard_job(*a, o);
    o.format = data::parse_sft_format(a->format);
    o.system = a->system;
    o.max_tokens = a->max_tokens;
    std::printf("%s\n", data::write_sft_shards(o).summary().c_str());
  });

  CLI::App* info = data->add_subcommand("info", "print the header and statistics of token shards");
  add_inputs(info, *a);
  info->add_option("--tokenizer", a->tokenizer, "tokenizer folder (to decode --show tokens)");
  info->add_option("--show", a->show, "decode the first N tokens");
  info->callback([a] { run_info(*a); });
}

}  // namespace mcpm::cli
