// fastText quality classifier: train (held-out metrics), load, score (see quality_classifier.h).
#include "data/clean/quality_classifier.h"

#include <fasttext/fasttext.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "core/error.h"
#include "data/clean/clean_input.h"
#include "data/clean/text_norm.h"

namespace fs = std::filesystem;

namespace mcpm::data::clean {

QualityClassifier::QualityClassifier(const std::string& model_path, Segmenter segment)
    : ft_(std::make_unique<fasttext::FastText>()), segment_(std::move(segment)) {
  MCPM_CHECK(fs::is_regular_file(model_path), "{}: classifier model not found", model_path);
  try {
    ft_->loadModel(model_path);
  } catch (const std::exception& e) {
    fail("{}: not a fastText model ({})", model_path, e.what());
  }
  MCPM_CHECK(ft_->getArgs().model == fasttext::model_name::sup, "{}: not a supervised fastText model", model_path);
}

QualityClassifier::~QualityClassifier() = default;

double QualityClassifier::score_preprocessed(const std::string& line) const {
  std::istringstream in(line + "\n");
  std::vector<std::pair<fasttext::real, std::string>> pred;
  ft_->predictLine(in, pred, 1, 0.0f);
  if (pred.empty()) return 0.5;  // no known word: no evidence either way
  const double p = std::min<double>(pred[0].first, 1.0);
  return pred[0].second == "__label__neg" ? 1.0 - p : p;
}

double QualityClassifier::score(std::string_view text) const {
  return score_preprocessed(ufw_preprocess(text, segment_));
}

std::string ClassifierMetrics::summary() const {
  return fmt::format("train {} pos / {} neg, held out {} pos / {} neg: precision {:.4f}, recall {:.4f}, F1 {:.4f}, "
                     "accuracy {:.4f} (tp {} fp {} tn {} fn {})",
                     train_pos, train_neg, valid_pos, valid_neg, precision(), recall(), f1(), accuracy(), tp, fp, tn, fn);
}

namespace {

std::vector<std::string> read_texts(const std::vector<std::string>& files, const std::vector<std::string>& keys,
                                    const std::string& split, const Segmenter& segment) {
  std::vector<std::string> out;
  for (size_t f = 0; f < files.size(); ++f) {
    MCPM_CHECK(fs::is_regular_file(files[f]), "{}: input file not found", files[f]);
    InputStats st;
    UnitReader r(InputUnit{f, files[f], 0, UINT64_MAX}, keys, parse_text_split(split), st);
    InputDoc d;
    while (r.next(d)) {
      std::string line = ufw_preprocess(d.text, segment);
      if (!line.empty()) out.push_back(std::move(line));
    }
    MCPM_CHECK(!out.empty() || st.documents > 0, "{}: no documents (bad records: {})", files[f], st.bad.size());
  }
  return out;
}

}  // namespace

ClassifierMetrics train_classifier(const ClassifierTrainOptions& o) {
  MCPM_CHECK(!o.pos.empty() && !o.neg.empty(), "train-classifier needs --pos and --neg files");
  MCPM_CHECK(o.valid_fraction >= 0 && o.valid_fraction < 1, "--valid-fraction must be in [0, 1)");
  auto pos = read_texts(o.pos, o.text_keys, o.split, o.segment);
  auto neg = read_texts(o.neg, o.text_keys, o.split, o.segment);
  MCPM_CHECK(!pos.empty() && !neg.empty(), "train-classifier: {} positive and {} negative documents (need both)",
             pos.size(), neg.size());
  std::mt19937_64 rng(o.seed);
  std::shuffle(pos.begin(), pos.end(), rng);
  std::shuffle(neg.begin(), neg.end(), rng);
  if (o.balance) {
    const size_t n = std::min(pos.size(), neg.size());
    pos.resize(n);
    neg.resize(n);
  }
  ClassifierMetrics m;
  const size_t vp = size_t(double(pos.size()) * o.valid_fraction), vn = size_t(double(neg.size()) * o.valid_fraction);
  m.valid_pos = vp;
  m.valid_neg = vn;
  m.train_pos = pos.size() - vp;
  m.train_neg = neg.size() - vn;
  MCPM_CHECK(m.train_pos > 0 && m.train_neg > 0, "train-classifier: nothing left to train on after the held-out split");
  // Training file: labelled lines, the classes interleaved in a seeded order.
  std::vector<std::string> train;
  for (size_t i = vp; i < pos.size(); ++i) train.push_back("__label__pos " + pos[i]);
  for (size_t i = vn; i < neg.size(); ++i) train.push_back("__label__neg " + neg[i]);
  std::shuffle(train.begin(), train.end(), rng);
  const fs::path out(o.out);
  if (out.has_parent_path()) fs::create_directories(out.parent_path());
  const std::string train_path = o.out + ".train.txt";
  {
    std::ofstream f(train_path, std::ios::binary | std::ios::trunc);
    MCPM_CHECK(f, "{}: cannot create", train_path);
    for (const auto& l : train) f << l << '\n';
  }
  fasttext::Args a;
  a.input = train_path;
  a.output = o.out;
  a.model = fasttext::model_name::sup;
  a.loss = o.loss == "softmax" ? fasttext::loss_name::softmax
           : o.loss == "hs"    ? fasttext::loss_name::hs
           : o.loss == "ova"   ? fasttext::loss_name::ova
           : o.loss == "ns"    ? fasttext::loss_name::ns
                               : (fail("unknown --loss '{}' (softmax, hs, ns, ova)", o.loss), fasttext::loss_name::softmax);
  a.dim = o.dim;
  a.lr = o.lr;
  a.wordNgrams = o.word_ngrams;
  a.minCount = o.min_count;
  a.epoch = o.epoch;
  a.thread = o.threads;
  a.bucket = o.bucket;
  a.ws = o.ws;
  a.neg = o.neg_samples;
  a.minn = o.minn;
  a.maxn = o.maxn;
  a.seed = int(o.seed);
  a.verbose = 0;
  fasttext::FastText ft;
  try {
    ft.train(a);
    ft.saveModel(o.out);
  } catch (const std::exception& e) {
    fail("fastText training failed: {}", e.what());
  }
  fs::remove(train_path);
  const QualityClassifier clf(o.out, o.segment);
  for (size_t i = 0; i < vp; ++i) (clf.score_preprocessed(pos[i]) >= o.threshold ? m.tp : m.fn)++;
  for (size_t i = 0; i < vn; ++i) (clf.score_preprocessed(neg[i]) >= o.threshold ? m.fp : m.tn)++;
  return m;
}

uint64_t score_file(const std::string& in, const std::string& out, const QualityClassifier& c,
                    const std::vector<std::string>& text_keys, const std::string& split, const std::string& score_key) {
  MCPM_CHECK(fs::is_regular_file(in), "{}: input file not found", in);
  InputStats st;
  UnitReader r(InputUnit{0, in, 0, UINT64_MAX}, text_keys, parse_text_split(split), st);
  std::ofstream f(out + ".tmp", std::ios::binary | std::ios::trunc);
  MCPM_CHECK(f, "{}.tmp: cannot create", out);
  InputDoc d;
  uint64_t n = 0;
  while (r.next(d)) {
    ojson rec = d.record.is_object() ? std::move(d.record) : ojson{{"text", d.text}};
    rec[score_key] = c.score(d.text);
    f << rec.dump(-1, ' ', false, ojson::error_handler_t::replace) << '\n';
    ++n;
  }
  f.close();
  MCPM_CHECK(f.good(), "{}.tmp: write failed", out);
  fs::rename(out + ".tmp", out);
  for (const auto& [reason, count] : st.bad)
    std::fprintf(stderr, "%s: %llu records skipped: %s\n", in.c_str(), (unsigned long long)count, reason.c_str());
  return n;
}

}  // namespace mcpm::data::clean
