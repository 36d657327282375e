// SentencePiece BPE tokenizer training (see tokenizer_trainer.h).
#include "data/tokenizer_trainer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <filesystem>
#include <fstream>
#include <unordered_map>

#include "core/error.h"
#include "core/json.h"
#include "data/progress.h"

namespace fs = std::filesystem;

namespace mcpm::data {

namespace {

// Feeds documents of every input to the trainer, cut into pieces of at most max_bytes at line
// boundaries (SentencePiece skips longer sentences).
class DocIterator final : public sentencepiece::SentenceIterator {
 public:
  DocIterator(const TokenizerTrainOptions& o) : o_(o) {
    for (const auto& p : o.inputs) total_ += fs::file_size(p);
    bar_ = std::make_unique<ProgressBar>("reading", total_, "B", o.progress);
    Next();
  }
  bool done() const override { return done_; }
  const std::string& value() const override { return value_; }
  sentencepiece::util::Status status() const override { return sentencepiece::util::Status(); }
  void Next() override {
    while (!done_) {
      if (!pending_.empty()) {
        // mcpm::Tokenizer (like HF's Llama conversion) encodes every text segment with a space in
        // front, so the pieces are learned on text of that form ("▁The" at the start of a document).
        value_ = " " + take_piece();
        ++n_;
        return;
      }
      if (!reader_ || !reader_->next(pending_)) {
        if (reader_) done_bytes_ += reader_->total_bytes();
        if (next_input_ >= o_.inputs.size()) {
          done_ = true;
          bar_->finish(fmt::format("{} sentences", human_count(double(n_))));
          return;
        }
        reader_ = std::make_unique<DocumentReader>(o_.inputs[next_input_++], o_.split, o_.field);
        continue;
      }
      bar_->update(done_bytes_ + reader_->bytes_read(), fmt::format("{} sentences", human_count(double(n_))));
    }
  }

 private:
  std::string take_piece() {
    const size_t max = size_t(o_.max_sentence_bytes) - 1;  // room for the leading space
    if (pending_.size() <= max) return std::move(pending_);
    size_t cut = pending_.rfind('\n', max);
    if (cut == std::string::npos || cut == 0) cut = pending_.rfind(' ', max);
    if (cut == std::string::npos || cut == 0) cut = max;
    std::string head = pending_.substr(0, cut);
    pending_.erase(0, cut);
    return head;
  }

  const TokenizerTrainOptions& o_;
  std::unique_ptr<DocumentReader> reader_;
  std::unique_ptr<ProgressBar> bar_;
  size_t next_input_ = 0;
  uint64_t total_ = 0, done_bytes_ = 0, n_ = 0;
  std::string pending_, value_;
  bool done_ = false;
};

void write_json(const std::string& path, const json& j) {
  std::ofstream f(path);
  MCPM_CHECK(f, "{}: cannot write", path);
  f << j.dump(2) << "\n";
}

}  // namespace

void write_tokenizer_configs(const std::string& dir) {
  json decoder = json::object();
  auto add = [&](int id, const std::string& content) {
    decoder[std::to_string(id)] = {{"content", content}, {"lstrip", false}, {"normalized", false},
                                   {"rstrip", false},    {"single_word", false}, {"special", true}};
  };
  add(0, "<unk>");
  add(1, "<s>");
  add(2, "</s>");
  std::vector<std::string> extra;
  int id = 3;
  for (const char* t : kChatSpecialTokens) {
    add(id++, t);
    extra.push_back(t);
  }
  json cfg = {{"add_bos_token", true},
              {"add_eos_token", false},
              {"added_tokens_decoder", decoder},
              {"additional_special_tokens", extra},
              {"bos_token", "<s>"},
              {"eos_token", "<|im_end|>"},
              {"unk_token", "<unk>"},
              {"pad_token", nullptr},
              {"clean_up_tokenization_spaces", false},
              {"legacy", true},
              {"model_max_length", 1000000000000000019884624838656.0},
              {"sp_model_kwargs", json::object()},
              {"spaces_between_special_tokens", false},
              {"tokenizer_class", "LlamaTokenizer"},
              {"use_default_system_prompt", false},
              {"chat_template", kMiniCPM4ChatTemplate}};
  write_json(dir + "/tokenizer_config.json", cfg);
  write_json(dir + "/special_tokens_map.json", {{"bos_token", "<s>"},
                                                {"eos_token", "<|im_end|>"},
                                                {"unk_token", "<unk>"},
                                                {"additional_special_tokens", extra}});
}

std::string train_tokenizer(const TokenizerTrainOptions& o) {
  MCPM_CHECK(!o.inputs.empty(), "train-tokenizer: no input files");
  MCPM_CHECK(!o.out_dir.empty(), "train-tokenizer: no output folder (-o DIR)");
  for (const auto& p : o.inputs) MCPM_CHECK(fs::is_regular_file(p), "{}: input file not found", p);
  const int n_fixed = 3 + int(std::size(kChatSpecialTokens)) + 2 + 256;
  MCPM_CHECK(o.vocab_size > n_fixed + 16, "train-tokenizer: vocab size {} is too small (the {} special, control and byte "
             "pieces alone take {})", o.vocab_size, n_fixed, n_fixed);
  std::string user_symbols;
  for (const char* t : kChatSpecialTokens) user_symbols += std::string(t) + ",";
  user_symbols += "\n,\t";
  const std::unordered_map<std::string, std::string> args = {
      {"model_type", "bpe"},
      {"vocab_size", std::to_string(o.vocab_size)},
      {"byte_fallback", "true"},
      {"split_digits", "true"},
      {"split_by_whitespace", "true"},
      {"split_by_unicode_script", "true"},
      {"allow_whitespace_only_pieces", "true"},
      {"normalization_rule_name", "identity"},
      {"add_dummy_prefix", "false"},
      {"remove_extra_whitespaces", "false"},
      {"character_coverage", fmt::format("{}", o.character_coverage)},
      {"input_sentence_size", std::to_string(o.max_sentences)},
      {"shuffle_input_sentence", "true"},
      {"max_sentence_length", std::to_string(o.max_sentence_bytes)},
      {"num_threads", std::to_string(std::max(1, o.threads))},
      {"unk_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"pad_id", "-1"},
      {"user_defined_symbols", user_symbols},
      {"minloglevel", "1"},
  };
  DocIterator it(o);
  std::string proto;
  const auto st = sentencepiece::SentencePieceTrainer::Train(args, &it, &proto);
  MCPM_CHECK(st.ok(), "train-tokenizer: SentencePiece failed: {}", st.ToString());
  fs::create_directories(o.out_dir);
  {
    std::ofstream f(o.out_dir + "/tokenizer.model", std::ios::binary);
    MCPM_CHECK(f, "{}/tokenizer.model: cannot write", o.out_dir);
    f.write(proto.data(), std::streamsize(proto.size()));
  }
  write_tokenizer_configs(o.out_dir);
  sentencepiece::SentencePieceProcessor sp;
  MCPM_CHECK(sp.LoadFromSerializedProto(proto).ok(), "train-tokenizer: the trained model does not load");
  MCPM_CHECK(sp.PieceToId("<|im_end|>") == 3 && sp.PieceToId("<|im_start|>") == 4,
             "train-tokenizer: unexpected special token ids");
  return fmt::format("{}: BPE, {} pieces (byte fallback, split digits), special tokens <|im_start|>={} <|im_end|>={}",
                     o.out_dir, sp.GetPieceSize(), sp.PieceToId("<|im_start|>"), sp.PieceToId("<|im_end|>"));
}

}  // namespace mcpm::data
