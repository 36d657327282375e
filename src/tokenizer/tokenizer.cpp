// mcpm::Tokenizer: loading (dispatch to tokenizer.json / tokenizer.model), encode, decode, lookups.
#include "tokenizer/tokenizer.h"

#include <filesystem>

#include "tokenizer/tokenizer_impl.h"

namespace mcpm {

namespace fs = std::filesystem;

Tokenizer::Tokenizer() : impl_(std::make_unique<TokenizerImpl>()) {}
Tokenizer::~Tokenizer() = default;

bool Tokenizer::present(const std::string& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir + "/tokenizer.json", ec) || fs::is_regular_file(dir + "/tokenizer.model", ec);
}

static const char* kChatML =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + "
    "'\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

std::unique_ptr<Tokenizer> Tokenizer::load(const std::string& dir) {
  MCPM_CHECK(present(dir),
             "{}: no tokenizer (tokenizer.json or tokenizer.model) — this command needs text; use --tokens to give "
             "token ids instead",
             dir);
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  TokenizerImpl& impl = *t->impl_;
  impl.dir = dir;
  const std::string json_path = dir + "/tokenizer.json";
  impl.source = fs::is_regular_file(json_path) ? json_path : dir + "/tokenizer.model";
  try {
    impl.config = read_tokenizer_config(dir);
    if (impl.source == json_path) load_tokenizer_json(impl, json_path);
    else load_sentencepiece(impl, impl.source);
  } catch (const json::exception& e) {  // a shape the checks above did not anticipate
    fail("{}: unexpected JSON structure in the tokenizer files ({})", dir, e.what());
  }
  const TokenizerConfig& cfg = impl.config;

  // BOS / EOS ids: tokenizer_config / special_tokens_map names, else the usual defaults.
  const auto resolve = [&](const std::optional<std::string>& name, const char* key) -> int32_t {
    if (!name) return -1;
    const auto id = impl.find(*name);
    MCPM_CHECK(id.has_value(), "{}: {} '{}' (tokenizer_config.json / special_tokens_map.json) is not in the vocab",
               dir, key, *name);
    return *id;
  };
  impl.bos = resolve(cfg.bos, "bos_token");
  if (impl.bos < 0) impl.bos = !impl.prefix.empty() ? impl.prefix[0] : impl.find("<s>").value_or(-1);
  impl.eos = resolve(cfg.eos, "eos_token");
  if (impl.eos < 0) impl.eos = impl.find("</s>").value_or(-1);

  // transformers' LlamaTokenizerFast rebuilds the post-processor from add_bos_token (default true) /
  // add_eos_token (default false) whatever tokenizer.json says.
  if (impl.bpe && cfg.tokenizer_class.find("LlamaTokenizer") != std::string::npos) {
    impl.prefix.clear();
    impl.suffix.clear();
    if (cfg.add_bos.value_or(true) && impl.bos >= 0) impl.prefix.push_back(impl.bos);
    if (cfg.add_eos.value_or(false) && impl.eos >= 0) impl.suffix.push_back(impl.eos);
  }

  // Chat template: parsed now; a problem is reported when it is applied (text encoding still works).
  impl.chat_template_error = cfg.chat_template_error;
  if (cfg.chat_template) {
    impl.chat_template_source = *cfg.chat_template;
    try {
      impl.chat_template.emplace(*cfg.chat_template, cfg.chat_template_where);
    } catch (const Error& e) {
      impl.chat_template_error = e.what();
    }
  }
  impl.chatml = std::make_unique<jinja::Template>(kChatML, "built-in ChatML template");
  return t;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos) const {
  const TokenizerImpl& m = *impl_;
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_bos) ids.insert(ids.end(), m.prefix.begin(), m.prefix.end());
  const auto encode_segment = [&](std::string_view seg) {
    if (m.spm) {
      m.spm->encode(seg, ids);
      return;
    }
    const std::string norm = m.normalizer.apply(seg);
    if (norm.empty()) return;
    if (m.normalized_added.empty()) {
      m.bpe->encode(norm, ids);
      return;
    }
    for (const TextSplit& s : m.normalized_added.split(norm)) {
      if (s.id >= 0) ids.push_back(s.id);
      else m.bpe->encode(std::string_view(norm).substr(s.begin, s.end - s.begin), ids);
    }
  };
  if (m.raw_added.empty()) {
    if (!text.empty()) encode_segment(text);
  } else {
    for (const TextSplit& s : m.raw_added.split(text)) {
      if (s.id >= 0) ids.push_back(s.id);
      else encode_segment(text.substr(s.begin, s.end - s.begin));
    }
  }
  if (add_bos) ids.insert(ids.end(), m.suffix.begin(), m.suffix.end());
  return ids;
}

static void check_id(const TokenizerImpl& m, int32_t id) {
  MCPM_CHECK(id >= 0 && size_t(id) < m.pieces.size(), "token id {} is out of range for the tokenizer in {} (vocab size {})",
             id, m.dir, m.pieces.size());
  MCPM_CHECK(m.defined[size_t(id)], "token id {} has no token in {} (the vocabulary skips it)", id, m.source);
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  const TokenizerImpl& m = *impl_;
  std::vector<std::string_view> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    check_id(m, id);
    if (skip_special && m.special[size_t(id)]) continue;
    tokens.push_back(m.pieces[size_t(id)]);
  }
  return m.decoder.decode(tokens);
}

std::string Tokenizer::piece(int32_t id) const {
  check_id(*impl_, id);
  return impl_->pieces[size_t(id)];
}

int64_t Tokenizer::vocab_size() const { return int64_t(impl_->pieces.size()); }
int32_t Tokenizer::bos_id() const { return impl_->bos; }
int32_t Tokenizer::eos_id() const { return impl_->eos; }
std::optional<int32_t> Tokenizer::token_id(std::string_view piece) const { return impl_->find(piece); }

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && size_t(id) < impl_->special.size() && impl_->special[size_t(id)];
}

bool Tokenizer::adds_bos() const { return !impl_->prefix.empty() && impl_->prefix[0] == impl_->bos; }
const std::vector<int32_t>& Tokenizer::special_prefix() const { return impl_->prefix; }
const std::vector<int32_t>& Tokenizer::special_suffix() const { return impl_->suffix; }
std::string Tokenizer::source() const { return impl_->source; }
bool Tokenizer::uses_sentencepiece() const { return impl_->spm != nullptr; }
const std::string& Tokenizer::chat_template_source() const { return impl_->chat_template_source; }

bool Tokenizer::has_chat_template() const {
  return impl_->config.chat_template.has_value() || !impl_->config.chat_template_error.empty();
}

std::string Tokenizer::apply_chat_template(const std::vector<ChatMessage>& messages,
                                           bool add_generation_prompt) const {
  const TokenizerImpl& m = *impl_;
  if (!m.chat_template_error.empty()) throw Error(m.chat_template_error);
  using jinja::Value;
  jinja::Dict g;
  jinja::List msgs;
  for (const auto& msg : messages) {
    jinja::Dict d;
    d.set("role", Value::string(msg.role));
    d.set("content", Value::string(msg.content));
    msgs.push_back(Value::make_dict(std::move(d)));
  }
  g.set("messages", Value::make_list(std::move(msgs)));
  g.set("add_generation_prompt", Value::boolean(add_generation_prompt));
  const auto name = [&](const char* key, const std::optional<std::string>& v) {
    if (v) g.set(key, Value::string(*v));
  };
  name("bos_token", m.config.bos);
  name("eos_token", m.config.eos);
  name("unk_token", m.config.unk);
  name("pad_token", m.config.pad);
  jinja::List extra;
  for (const auto& s : m.config.additional_special) extra.push_back(Value::string(s));
  g.set("additional_special_tokens", Value::make_list(std::move(extra)));
  const jinja::Template& t = m.chat_template ? *m.chat_template : *m.chatml;
  return t.render(g);
}

std::vector<int32_t> Tokenizer::encode_chat(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                            bool add_bos) const {
  return encode(apply_chat_template(messages, add_generation_prompt), add_bos);
}

// ---- StreamingDecoder -----------------------------------------------------------------------------

StreamingDecoder::StreamingDecoder(const Tokenizer& tokenizer, bool skip_special)
    : tok_(&tokenizer), skip_special_(skip_special),
      state_(std::make_unique<DecodeState>(tokenizer.impl_->decoder)) {}
StreamingDecoder::~StreamingDecoder() = default;
StreamingDecoder::StreamingDecoder(StreamingDecoder&&) noexcept = default;
StreamingDecoder& StreamingDecoder::operator=(StreamingDecoder&&) noexcept = default;

std::string StreamingDecoder::push(int32_t id) {
  const TokenizerImpl& m = *tok_->impl_;
  check_id(m, id);
  if (skip_special_ && m.special[size_t(id)]) return {};
  return state_->push(m.pieces[size_t(id)]);
}

std::string StreamingDecoder::flush() { return state_->flush(); }
void StreamingDecoder::reset() { state_->reset(); }

}  // namespace mcpm
