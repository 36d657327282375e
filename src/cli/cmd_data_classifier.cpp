// `minicpm data train-classifier` / `data score`: the fastText quality classifier
// (data/clean/quality_classifier.h; UltraFineWeb preprocessing and hyperparameters by default).
#include <cstdio>
#include <sstream>

#include "cli/classifier_segmenter.h"
#include "cli/commands.h"
#include "data/clean/quality_classifier.h"

namespace mcpm::cli {

namespace {
std::vector<std::string> split_keys(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string k;
  while (std::getline(ss, k, ','))
    if (!k.empty()) out.push_back(k);
  return out;
}
}  // namespace

void register_data_classifier(CLI::App& data) {
  struct Args {
    data::clean::ClassifierTrainOptions t;
    std::string keys = "text";
    std::string in, model, out, score_key = "quality_score", tokenizer;
  };
  auto a = std::make_shared<Args>();
  auto& t = a->t;
  CLI::App* tc = data.add_subcommand("train-classifier",
                                     "train a fastText quality classifier (UltraFineWeb recipe) and report held-out "
                                     "precision / recall");
  tc->add_option("--pos", t.pos, "positive (high quality) files")->required();
  tc->add_option("--neg", t.neg, "negative files")->required();
  tc->add_option("-o,--out", t.out, "model to write (.bin)")->required();
  tc->add_option("--text-key", a->keys, "JSON fields joined as the text (comma separated; the ones present)")
      ->capture_default_str();
  tc->add_option("--split", t.split, "text files: line, paragraph or file")->capture_default_str();
  tc->add_option("--valid-fraction", t.valid_fraction, "held out per class")->capture_default_str();
  tc->add_option("--seed", t.seed, "shuffle / split / fastText seed")->capture_default_str();
  tc->add_option("--balance", t.balance, "subsample the larger class to the smaller's size")->capture_default_str();
  tc->add_option("--dim", t.dim, "fastText -dim")->capture_default_str();
  tc->add_option("--lr", t.lr, "fastText -lr")->capture_default_str();
  tc->add_option("--word-ngrams", t.word_ngrams, "fastText -wordNgrams")->capture_default_str();
  tc->add_option("--min-count", t.min_count, "fastText -minCount")->capture_default_str();
  tc->add_option("--epoch", t.epoch, "fastText -epoch")->capture_default_str();
  tc->add_option("--bucket", t.bucket, "fastText -bucket")->capture_default_str();
  tc->add_option("--ws", t.ws, "fastText -ws")->capture_default_str();
  tc->add_option("--neg-samples", t.neg_samples, "fastText -neg")->capture_default_str();
  tc->add_option("--minn", t.minn, "fastText -minn")->capture_default_str();
  tc->add_option("--maxn", t.maxn, "fastText -maxn")->capture_default_str();
  tc->add_option("--loss", t.loss, "fastText -loss: softmax, hs, ns, ova")->capture_default_str();
  tc->add_option("-t,--threads", t.threads, "fastText -thread (1 is reproducible)")->capture_default_str();
  tc->add_option("--threshold", t.threshold, "score threshold for the held-out metrics")->capture_default_str();
  tc->add_option("--tokenizer", a->tokenizer,
                 "segment words with this tokenizer folder (UltraFineWeb uses DeepSeek-V2's; default: letters / digits "
                 "/ single symbols); recorded in MODEL.json");
  tc->callback([a] {
    a->t.text_keys = split_keys(a->keys);
    if (!a->tokenizer.empty()) a->t.segment = tokenizer_segmenter(a->tokenizer).fn;
    const auto m = data::clean::train_classifier(a->t);
    write_classifier_info(a->t.out, a->tokenizer);
    std::printf("%s\nmodel: %s\n", m.summary().c_str(), a->t.out.c_str());
  });

  CLI::App* sc = data.add_subcommand("score", "add the fastText quality score to every record (JSONL out)");
  sc->add_option("-i,--input", a->in, "input file (JSONL / JSON / text, optionally .gz / .zst)")->required();
  sc->add_option("--classifier", a->model, "fastText model from train-classifier")->required();
  sc->add_option("-o,--out", a->out, "JSONL to write")->required();
  sc->add_option("--text-key", a->keys, "JSON fields joined as the text (comma separated)")->capture_default_str();
  sc->add_option("--split", t.split, "text files: line, paragraph or file")->capture_default_str();
  sc->add_option("--score-key", a->score_key, "field the score is written to")->capture_default_str();
  sc->add_option("--tokenizer", a->tokenizer, "segmentation tokenizer (default: the one in MODEL.json, if any)");
  sc->callback([a] {
    const data::clean::QualityClassifier clf(a->model, classifier_segmenter(a->model, a->tokenizer).fn);
    const uint64_t n = data::clean::score_file(a->in, a->out, clf, split_keys(a->keys), a->t.split, a->score_key);
    std::printf("%llu records scored -> %s\n", (unsigned long long)n, a->out.c_str());
  });
}

}  // namespace mcpm::cli
