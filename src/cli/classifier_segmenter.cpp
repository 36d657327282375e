// Classifier segmentation from a tokenizer folder, and the MODEL.json that records it.
#include "cli/classifier_segmenter.h"

#include <filesystem>
#include <fstream>

#include "core/json.h"
#include "data/clean/utf8.h"
#include "tokenizer/tokenizer.h"

namespace fs = std::filesystem;

namespace mcpm::cli {

ClassifierSegmenter tokenizer_segmenter(const std::string& tokenizer_dir) {
  std::shared_ptr<Tokenizer> tok = Tokenizer::load(tokenizer_dir);
  ClassifierSegmenter s;
  s.name = "tokenizer:" + fs::absolute(tokenizer_dir).lexically_normal().string();
  s.fn = [tok](const std::string& text) {
    std::vector<std::string> pieces;
    for (const int32_t id : tok->encode(text, false)) {
      std::string p = tok->decode({id}, false);
      pieces.push_back(data::clean::valid_utf8(p) ? std::move(p) : std::string("\xEF\xBF\xBD"));
    }
    return pieces;
  };
  return s;
}

ClassifierSegmenter classifier_segmenter(const std::string& model, const std::string& tokenizer_dir) {
  if (!tokenizer_dir.empty()) return tokenizer_segmenter(tokenizer_dir);
  const std::string info = model + ".json";
  if (!fs::exists(info)) return {};
  const json j = parse_json_file(info);
  if (!j.contains("tokenizer") || !j["tokenizer"].is_string()) return {};
  const std::string dir = j["tokenizer"].get<std::string>();
  MCPM_CHECK(Tokenizer::present(dir), "{}: the model was trained with the tokenizer in {}, which is not there (give "
             "--tokenizer DIR)", info, dir);
  return tokenizer_segmenter(dir);
}

void write_classifier_info(const std::string& model, const std::string& tokenizer_dir) {
  json j{{"preprocess", "ultrafineweb"}, {"labels", {"__label__pos", "__label__neg"}}};
  if (!tokenizer_dir.empty()) j["tokenizer"] = fs::absolute(tokenizer_dir).lexically_normal().string();
  std::ofstream f(model + ".json", std::ios::trunc);
  MCPM_CHECK(f, "{}.json: cannot create", model);
  f << j.dump(2) << "\n";
}

}  // namespace mcpm::cli
