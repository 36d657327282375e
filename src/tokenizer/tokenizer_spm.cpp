// Loading a SentencePiece tokenizer.model (no tokenizer.json) into TokenizerImpl: pieces from the
// model, added tokens from tokenizer_config.json / added_tokens.json, BOS/EOS from add_bos_token /
// add_eos_token like HF's slow LlamaTokenizer.
#include <algorithm>

#include "tokenizer/tokenizer_impl.h"

namespace mcpm {

void load_sentencepiece(TokenizerImpl& impl, const std::string& path) {
  impl.spm = std::make_unique<SpmModel>(path);
  const SpmModel& sp = *impl.spm;
  const int32_t n = sp.size();
  for (int32_t id = 0; id < n; ++id) impl.set_piece(id, sp.piece(id));

  // Added tokens: the config's list, then control / unknown pieces of the model (<s>, </s>, <unk>).
  std::vector<AddedToken> added = impl.config.added_tokens;
  const auto names = config_special_names(impl.config);
  for (auto& a : added) {
    if (std::find(names.begin(), names.end(), a.content) != names.end()) a.special = true;
    MCPM_CHECK(a.id >= n || sp.piece(a.id) == a.content,
               "{}: added token '{}' has id {}, which is the SentencePiece piece '{}' in {}", impl.dir, a.content, a.id,
               sp.piece(a.id), path);
  }
  for (int32_t id = 0; id < n; ++id) {
    if (!sp.is_control(id) && !sp.is_unknown(id)) continue;
    if (std::any_of(added.begin(), added.end(), [&](const AddedToken& a) { return a.id == id; })) continue;
    AddedToken a;
    a.id = id;
    a.content = sp.piece(id);
    a.special = true;
    added.push_back(std::move(a));
  }
  // Config special tokens that are ordinary pieces of the model become special added tokens too.
  for (const std::string& name : names) {
    if (std::any_of(added.begin(), added.end(), [&](const AddedToken& a) { return a.content == name; })) continue;
    for (int32_t id = 0; id < n; ++id)
      if (sp.piece(id) == name) {
        AddedToken a;
        a.id = id;
        a.content = name;
        a.special = true;
        added.push_back(std::move(a));
        break;
      }
  }
  for (int32_t id = 0; id < n; ++id) impl.ids.emplace(sp.piece(id), id);
  std::vector<std::string> patterns;
  for (const auto& a : added) {
    impl.set_piece(a.id, a.content);
    impl.ids[a.content] = a.id;
    if (a.special) impl.special[size_t(a.id)] = 1;
    patterns.push_back(a.content);
  }
  impl.raw_added = AddedTokenMatcher(added, patterns);
  impl.decoder = DecoderPipeline::sentencepiece_default();

  const int32_t bos = impl.config.bos ? impl.find(*impl.config.bos).value_or(-1) : sp.bos_id();
  const int32_t eos = impl.config.eos ? impl.find(*impl.config.eos).value_or(-1) : sp.eos_id();
  if (impl.config.add_bos.value_or(true) && bos >= 0) impl.prefix.push_back(bos);
  if (impl.config.add_eos.value_or(false) && eos >= 0) impl.suffix.push_back(eos);
}

}  // namespace mcpm
