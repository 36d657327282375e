// Loading a Hugging Face tokenizer.json (model BPE) into TokenizerImpl.
#include <algorithm>

#include "tokenizer/tokenizer_impl.h"

namespace mcpm {

void TokenizerImpl::set_piece(int32_t id, const std::string& s) {
  MCPM_ASSERT(id >= 0);
  if (size_t(id) >= pieces.size()) {
    pieces.resize(size_t(id) + 1);
    defined.resize(size_t(id) + 1, 0);
    special.resize(size_t(id) + 1, 0);
  }
  pieces[size_t(id)] = s;
  defined[size_t(id)] = 1;
}

static constexpr int64_t kMaxVocab = int64_t(1) << 24;

static bool get_flag(const json& o, const char* key, bool dflt, const std::string& where) {
  if (!o.contains(key) || o[key].is_null()) return dflt;
  MCPM_CHECK(o[key].is_boolean(), "{}: '{}' must be a boolean", where, key);
  return o[key].get<bool>();
}

// Special tokens that the post-processor puts around the text: TemplateProcessing, Bert/Roberta
// processing, ByteLevel (no tokens), or a Sequence of those.
static void parse_post_processor(const json& j, const std::string& where, const TokenizerImpl& impl,
                                 std::vector<int32_t>& prefix, std::vector<int32_t>& suffix) {
  if (j.is_null()) return;
  MCPM_CHECK(j.is_object() && j.contains("type") && j["type"].is_string(),
             "{}: expected an object with a string 'type'", where);
  const std::string type = j["type"];
  if (type == "Sequence") {
    MCPM_CHECK(j.contains("processors") && j["processors"].is_array(), "{}: Sequence needs 'processors'", where);
    for (size_t i = 0; i < j["processors"].size(); ++i)
      parse_post_processor(j["processors"][i], fmt::format("{}.processors[{}]", where, i), impl, prefix, suffix);
    return;
  }
  if (type == "ByteLevel") return;
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    const auto tok = [&](const char* k) {
      MCPM_CHECK(j.contains(k) && j[k].is_array() && j[k].size() == 2 && j[k][1].is_number_integer(),
                 "{}: '{}' must be [token, id]", where, k);
      return j[k][1].get<int32_t>();
    };
    prefix.push_back(tok("cls"));
    suffix.push_back(tok("sep"));
    return;
  }
  MCPM_CHECK(type == "TemplateProcessing", "{}: post_processor type '{}' is not supported", where, type);
  MCPM_CHECK(j.contains("single"), "{}: TemplateProcessing needs 'single'", where);
  const json& specials = j.value("special_tokens", json::object());
  const auto special_ids = [&](const std::string& name) {
    std::vector<int32_t> out;
    if (specials.is_object() && specials.contains(name)) {
      const json& s = specials[name];
      MCPM_CHECK(s.is_object() && s.contains("ids") && s["ids"].is_array(),
                 "{}: special_tokens['{}'] needs an 'ids' list", where, name);
      for (const auto& id : s["ids"]) {
        MCPM_CHECK(id.is_number_integer(), "{}: special_tokens['{}'].ids must be integers", where, name);
        out.push_back(id.get<int32_t>());
      }
    } else {
      const auto id = impl.find(name);
      MCPM_CHECK(id.has_value(), "{}: special token '{}' is neither in special_tokens nor in the vocab", where, name);
      out.push_back(*id);
    }
    return out;
  };
  bool seen_a = false;
  const auto add_special = [&](const std::string& name) {
    for (int32_t id : special_ids(name)) (seen_a ? suffix : prefix).push_back(id);
  };
  const json& single = j["single"];
  if (single.is_string()) {  // "<s> $A" form
    std::string s = single;
    size_t i = 0;
    while (i < s.size()) {
      while (i < s.size() && s[i] == ' ') ++i;
      size_t e = i;
      while (e < s.size() && s[e] != ' ') ++e;
      if (e > i) {
        std::string piece = s.substr(i, e - i);
        if (const size_t colon = piece.rfind(':'); colon != std::string::npos && colon > 0) piece.resize(colon);
        if (piece[0] == '$') seen_a = true;
        else add_special(piece);
      }
      i = e;
    }
    return;
  }
  MCPM_CHECK(single.is_array(), "{}: 'single' must be a list", where);
  for (const auto& item : single) {
    MCPM_CHECK(item.is_object(), "{}: 'single' items must be objects", where);
    if (item.contains("Sequence")) {
      seen_a = true;
    } else {
      MCPM_CHECK(item.contains("SpecialToken") && item["SpecialToken"].contains("id") &&
                     item["SpecialToken"]["id"].is_string(),
                 "{}: 'single' items must be {{\"Sequence\"}} or {{\"SpecialToken\": {{\"id\": ...}}}}", where);
      add_special(item["SpecialToken"]["id"]);
    }
  }
}

void load_tokenizer_json(TokenizerImpl& impl, const std::string& path) {
  const json root = parse_json_file(path);
  MCPM_CHECK(root.is_object(), "{}: expected a JSON object at the top level", path);
  MCPM_CHECK(root.contains("model") && root["model"].is_object(),
             "{}: missing \"model\" (expected an object with \"type\": \"BPE\", \"vocab\" and \"merges\")", path);
  const json& model = root["model"];
  const std::string mw = path + ": model";
  if (model.contains("type")) {
    MCPM_CHECK(model["type"].is_string(), "{}.type must be a string", mw);
    const std::string type = model["type"];
    MCPM_CHECK(type == "BPE",
               "{}.type is \"{}\": only BPE tokenizers are supported (Unigram, WordPiece and WordLevel are not)", mw,
               type);
  }
  MCPM_CHECK(model.contains("vocab") && model["vocab"].is_object(),
             "{}: missing \"vocab\" (expected an object of piece -> id)", mw);
  MCPM_CHECK(model.contains("merges") && model["merges"].is_array(),
             "{}: missing \"merges\" (expected a list of [left, right] pairs or \"left right\" strings)", mw);

  // Vocab.
  for (const auto& [piece, id] : model["vocab"].items()) {
    MCPM_CHECK(id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() < kMaxVocab,
               "{}.vocab[\"{}\"]: the id must be an integer in [0, {})", mw, piece, kMaxVocab);
    const auto i = id.get<int32_t>();
    impl.model_vocab[piece] = i;
    impl.set_piece(i, piece);
  }
  MCPM_CHECK(!impl.model_vocab.empty(), "{}.vocab is empty", mw);

  // Merges.
  const json& jm = model["merges"];
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(jm.size());
  for (size_t i = 0; i < jm.size(); ++i) {
    const json& m = jm[i];
    if (m.is_array()) {
      MCPM_CHECK(m.size() == 2 && m[0].is_string() && m[1].is_string(),
                 "{}.merges[{}]: expected a pair of strings", mw, i);
      merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      MCPM_CHECK(m.is_string(), "{}.merges[{}]: expected [left, right] or \"left right\"", mw, i);
      const std::string s = m;
      const size_t sp = s.find(' ');
      MCPM_CHECK(sp != std::string::npos && s.find(' ', sp + 1) == std::string::npos,
                 "{}.merges[{}]: \"{}\" is not two pieces separated by one space", mw, i, s);
      merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    }
  }

  // Options.
  BpeOptions opt;
  opt.byte_fallback = get_flag(model, "byte_fallback", false, mw);
  opt.fuse_unk = get_flag(model, "fuse_unk", false, mw);
  opt.ignore_merges = get_flag(model, "ignore_merges", false, mw);
  if (model.contains("unk_token") && !model["unk_token"].is_null()) {
    MCPM_CHECK(model["unk_token"].is_string(), "{}.unk_token must be a string", mw);
    opt.unk_id = find_piece(impl.model_vocab, model["unk_token"].get<std::string>());
  }
  if (model.contains("dropout") && !model["dropout"].is_null()) {
    MCPM_CHECK(model["dropout"].is_number() && model["dropout"].get<double>() == 0.0,
               "{}.dropout: BPE dropout is not supported (expected null)", mw);
  }
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(k) && !model[k].is_null())
      MCPM_CHECK(model[k].is_string() && model[k].get<std::string>().empty(), "{}.{} is not supported (expected null)",
                 mw, k);
  }
  impl.bpe = std::make_unique<BpeModel>(impl.model_vocab, merges, opt, mw + ".merges");

  // Normalizer / pre-tokenizer / decoder / post-processor.
  impl.normalizer = Normalizer::from_json(root.value("normalizer", json()), path + ": normalizer");
  if (root.contains("pre_tokenizer") && !root["pre_tokenizer"].is_null()) {
    const json& pt = root["pre_tokenizer"];
    fail("{}: pre_tokenizer {} is not supported (only null, as in SentencePiece-style BPE tokenizers)", path,
         pt.is_object() && pt.contains("type") ? pt["type"].dump() : pt.dump().substr(0, 60));
  }
  impl.decoder = DecoderPipeline::from_json(root.value("decoder", json()), path + ": decoder");

  // Added tokens (tokenizer.json's list first; tokenizer_config specials not in it are added).
  std::vector<AddedToken> added;
  if (root.contains("added_tokens") && !root["added_tokens"].is_null()) {
    const json& at = root["added_tokens"];
    MCPM_CHECK(at.is_array(), "{}: 'added_tokens' must be a list", path);
    for (size_t i = 0; i < at.size(); ++i) {
      const std::string w = fmt::format("{}: added_tokens[{}]", path, i);
      const json& t = at[i];
      MCPM_CHECK(t.is_object() && t.contains("id") && t["id"].is_number_integer() && t["id"].get<int64_t>() >= 0 &&
                     t["id"].get<int64_t>() < kMaxVocab && t.contains("content") && t["content"].is_string(),
                 "{}: expected an object with an integer 'id' in [0, {}) and a string 'content'", w, kMaxVocab);
      AddedToken a;
      a.id = t["id"].get<int32_t>();
      a.content = t["content"];
      MCPM_CHECK(!a.content.empty(), "{}: 'content' is empty", w);
      a.special = get_flag(t, "special", false, w);
      a.single_word = get_flag(t, "single_word", false, w);
      a.lstrip = get_flag(t, "lstrip", false, w);
      a.rstrip = get_flag(t, "rstrip", false, w);
      a.normalized = get_flag(t, "normalized", !a.special, w);
      added.push_back(std::move(a));
    }
  }
  // transformers registers the config's special tokens (bos/eos/unk/pad/additional) as special added
  // tokens; those that are only in the model vocab join the list here.
  for (const std::string& name : config_special_names(impl.config)) {
    if (std::any_of(added.begin(), added.end(), [&](const AddedToken& a) { return a.content == name; })) continue;
    if (const auto id = find_piece(impl.model_vocab, name)) {
      AddedToken a;
      a.id = *id;
      a.content = name;
      a.special = true;
      added.push_back(std::move(a));
    }
  }
  for (const auto& a : added) {
    impl.set_piece(a.id, a.content);
    impl.ids[a.content] = a.id;
    if (a.special) impl.special[size_t(a.id)] = 1;
  }
  for (const auto& [piece, id] : impl.model_vocab) impl.ids.emplace(piece, id);  // added tokens win

  // Post-processor (needs the ids above for special-token lookups).
  parse_post_processor(root.value("post_processor", json()), path + ": post_processor", impl, impl.prefix,
                       impl.suffix);

  // Split the added tokens into raw-text and normalized-text matchers.
  std::vector<AddedToken> raw, norm;
  std::vector<std::string> raw_pat, norm_pat;
  for (const auto& a : added) {
    if (a.normalized) {
      norm.push_back(a);
      norm_pat.push_back(impl.normalizer.apply(a.content));
    } else {
      raw.push_back(a);
      raw_pat.push_back(a.content);
    }
  }
  impl.raw_added = AddedTokenMatcher(std::move(raw), std::move(raw_pat));
  impl.normalized_added = AddedTokenMatcher(std::move(norm), std::move(norm_pat));
}

}  // namespace mcpm
