// fastText quality classifier (UltraFineWeb recipe, training-recipe.md §6): documents are
// preprocessed with ufw_preprocess, labelled __label__pos / __label__neg, trained with fastText
// (defaults dim 256, lr 0.1, wordNgrams 3, minCount 5, epoch 3, softmax); the score of a document
// is p(top label), or 1 - p when the top label is __label__neg.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "data/clean/text_norm.h"

namespace fasttext {
class FastText;
}

namespace mcpm::data::clean {

class QualityClassifier {
 public:
  // `segment` is the word segmentation of ufw_preprocess step 4 the model was trained with (null:
  // the built-in one). Throws mcpm::Error naming the file.
  explicit QualityClassifier(const std::string& model_path, Segmenter segment = nullptr);
  ~QualityClassifier();
  QualityClassifier(const QualityClassifier&) = delete;
  QualityClassifier& operator=(const QualityClassifier&) = delete;
  // Score of already-preprocessed text (one line) / of raw text.
  double score_preprocessed(const std::string& line) const;
  double score(std::string_view text) const;

 private:
  std::unique_ptr<fasttext::FastText> ft_;
  Segmenter segment_;
};

struct ClassifierTrainOptions {
  std::vector<std::string> pos, neg;        // input files (any format clean_input reads)
  std::vector<std::string> text_keys = {"text"};
  std::string split = "line";               // text files
  std::string out;                          // model path (.bin)
  double valid_fraction = 0.1;              // held out per class, after a seeded shuffle
  uint64_t seed = 1;
  bool balance = true;                      // subsample the larger class to the smaller one's size
  int dim = 256, word_ngrams = 3, min_count = 5, epoch = 3, threads = 1, bucket = 2000000, ws = 5,
      neg_samples = 5, minn = 0, maxn = 0;
  double lr = 0.1, threshold = 0.5;
  std::string loss = "softmax";
  Segmenter segment;  // ufw_preprocess step 4 (null: built-in)
};

struct ClassifierMetrics {
  uint64_t train_pos = 0, train_neg = 0, valid_pos = 0, valid_neg = 0;
  uint64_t tp = 0, fp = 0, tn = 0, fn = 0;  // on the held-out split at `threshold`
  double precision() const { return tp + fp ? double(tp) / double(tp + fp) : 0; }
  double recall() const { return tp + fn ? double(tp) / double(tp + fn) : 0; }
  double f1() const { const double p = precision(), r = recall(); return p + r > 0 ? 2 * p * r / (p + r) : 0; }
  double accuracy() const { const auto n = tp + fp + tn + fn; return n ? double(tp + tn) / double(n) : 0; }
  std::string summary() const;
};

ClassifierMetrics train_classifier(const ClassifierTrainOptions& o);

// Reads `in` (JSONL / JSON / text as clean_input), writes JSONL with `score_key` added to every
// record (text inputs become {"text": ..., score_key: ...}). Returns the number of records scored.
uint64_t score_file(const std::string& in, const std::string& out, const QualityClassifier& c,
                    const std::vector<std::string>& text_keys, const std::string& split,
                    const std::string& score_key = "quality_score");

}  // namespace mcpm::data::clean
