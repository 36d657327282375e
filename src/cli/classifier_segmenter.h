// The word segmentation of a quality classifier's UltraFineWeb preprocessing (step 4): UltraFineWeb
// decodes DeepSeek-V2 tokens one by one; `--tokenizer DIR` stands in any tokenizer folder for it
// (each token decoded alone, bytes that are not whole UTF-8 characters as U+FFFD, like HF's decode).
// train-classifier records the choice next to the model (MODEL.json); score and clean read it back.
#pragma once
#include <memory>
#include <string>

#include "data/clean/text_norm.h"

namespace mcpm::cli {

struct ClassifierSegmenter {
  data::clean::Segmenter fn;  // null: the built-in segmentation
  std::string name = "builtin";
};

// From `tokenizer_dir` if given, else from MODEL.json next to `model` if it names a tokenizer.
ClassifierSegmenter classifier_segmenter(const std::string& model, const std::string& tokenizer_dir);
ClassifierSegmenter tokenizer_segmenter(const std::string& tokenizer_dir);
void write_classifier_info(const std::string& model, const std::string& tokenizer_dir);

}  // namespace mcpm::cli
