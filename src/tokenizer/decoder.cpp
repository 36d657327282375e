// Decoder pipeline and its incremental form (see decoder.h).
#include "tokenizer/decoder.h"

#include "tokenizer/normalizer.h"
#include "tokenizer/utf8.h"

namespace mcpm {

DecoderPipeline DecoderPipeline::sentencepiece_default() {
  DecoderPipeline p;
  p.has_decoder_ = true;
  p.replacements_.emplace_back("\xE2\x96\x81", " ");
  p.byte_fallback_ = true;
  p.strip_content_.assign(1, ' ');
  p.strip_start_ = 1;
  return p;
}

DecoderPipeline DecoderPipeline::from_json(const json& j, const std::string& where) {
  DecoderPipeline p;
  if (j.is_null()) return p;
  p.has_decoder_ = true;
  std::vector<std::pair<const json*, std::string>> steps;
  MCPM_CHECK(j.is_object() && j.contains("type") && j["type"].is_string(),
             "{}: expected an object with a string 'type'", where);
  if (j["type"] == "Sequence") {
    MCPM_CHECK(j.contains("decoders") && j["decoders"].is_array(), "{}: Sequence needs a 'decoders' list", where);
    for (size_t i = 0; i < j["decoders"].size(); ++i)
      steps.emplace_back(&j["decoders"][i], fmt::format("{}.decoders[{}]", where, i));
  } else {
    steps.emplace_back(&j, where);
  }
  // Accepted order: Replace*, ByteFallback?, Fuse?, Strip? (Strip only after Fuse).
  int stage = 0;  // 0: replacements, 1: after ByteFallback, 2: after Fuse, 3: after Strip
  for (const auto& step : steps) {
    const json* s = step.first;  // not a structured binding: lambdas below capture it (clang 14)
    const std::string& w = step.second;
    MCPM_CHECK(s->is_object() && s->contains("type") && (*s)["type"].is_string(),
               "{}: expected an object with a string 'type'", w);
    const std::string type = (*s)["type"];
    if (type == "Replace") {
      MCPM_CHECK(stage == 0, "{}: Replace after ByteFallback/Fuse/Strip is not supported", w);
      MCPM_CHECK(s->contains("content") && (*s)["content"].is_string(), "{}: Replace needs a string 'content'", w);
      const json& pat = s->value("pattern", json());
      MCPM_CHECK(pat.is_object() && pat.contains("String") && pat["String"].is_string() &&
                     !pat["String"].get<std::string>().empty(),
                 "{}: only Replace with a literal {{\"String\": ...}} pattern is supported", w);
      p.replacements_.emplace_back(pat["String"].get<std::string>(), (*s)["content"].get<std::string>());
    } else if (type == "ByteFallback") {
      MCPM_CHECK(stage == 0, "{}: ByteFallback must come before Fuse/Strip", w);
      p.byte_fallback_ = true;
      stage = 1;
    } else if (type == "Fuse") {
      MCPM_CHECK(stage <= 1, "{}: Fuse must come before Strip", w);
      stage = 2;
    } else if (type == "Strip") {
      MCPM_CHECK(stage == 2, "{}: Strip is supported only after Fuse", w);
      MCPM_CHECK(s->contains("content") && (*s)["content"].is_string(), "{}: Strip needs a string 'content'", w);
      const std::string c = (*s)["content"];
      MCPM_CHECK(!c.empty() && utf8::char_len(c, 0) == c.size(), "{}: Strip 'content' must be one character", w);
      p.strip_content_ = c;
      const auto count = [&](const char* k) -> size_t {
        if (!s->contains(k)) return 0;
        MCPM_CHECK((*s)[k].is_number_unsigned() || ((*s)[k].is_number_integer() && (*s)[k].get<int64_t>() >= 0),
                   "{}: Strip '{}' must be a non-negative integer", w, k);
        return (*s)[k].get<size_t>();
      };
      p.strip_start_ = count("start");
      p.strip_stop_ = count("stop");
      stage = 3;
    } else {
      fail("{}: decoder type '{}' is not supported (supported: Sequence of Replace, ByteFallback, Fuse, Strip)", w,
           type);
    }
  }
  return p;
}

std::string DecoderPipeline::map_token(std::string_view token) const {
  std::string s(token);
  for (const auto& [from, to] : replacements_) s = replace_all(s, from, to);
  return s;
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool DecoderPipeline::byte_of(std::string_view t, uint8_t& byte) const {
  if (!byte_fallback_ || t.size() != 6 || t.substr(0, 3) != "<0x" || t[5] != '>') return false;
  const int hi = hex_value(t[3]), lo = hex_value(t[4]);
  if (hi < 0 || lo < 0) return false;
  byte = uint8_t(hi * 16 + lo);
  return true;
}

std::string decode_byte_run(const std::string& bytes) {
  if (utf8::is_valid(bytes)) return bytes;
  std::string out;
  for (size_t i = 0; i < bytes.size(); ++i) out.append(utf8::kReplacementChar);
  return out;
}

// Number of leading / trailing `c` characters (up to `limit`).
static size_t leading_count(std::string_view s, std::string_view c, size_t limit) {
  size_t n = 0;
  while (n < limit && s.substr(n * c.size(), c.size()) == c) ++n;
  return n;
}

std::string DecoderPipeline::decode(const std::vector<std::string_view>& tokens) const {
  if (!has_decoder_) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i) out += ' ';
      out.append(tokens[i]);
    }
    return out;
  }
  // Replace, then ByteFallback (runs of byte tokens), then Fuse.
  std::string fused, run;
  bool in_run = false;
  for (std::string_view t : tokens) {
    const std::string m = map_token(t);
    uint8_t b;
    if (byte_of(m, b)) {
      run += char(b);
      in_run = true;
      continue;
    }
    if (in_run) fused += decode_byte_run(run);
    run.clear();
    in_run = false;
    fused += m;
  }
  if (in_run) fused += decode_byte_run(run);
  if (strip_content_.empty()) return fused;
  // Strip on the fused string: up to `start` leading and `stop` trailing content characters.
  const size_t cs = strip_content_.size();
  const size_t lead = leading_count(fused, strip_content_, strip_start_);
  std::string_view rest = std::string_view(fused).substr(lead * cs);
  size_t trail = 0;
  while (trail < strip_stop_ && rest.size() >= (trail + 1) * cs &&
         rest.substr(rest.size() - (trail + 1) * cs, cs) == strip_content_)
    ++trail;
  return std::string(rest.substr(0, rest.size() - trail * cs));
}

// ---- incremental form ----------------------------------------------------------------------------

void DecodeState::reset() {
  pending_bytes_.clear();
  in_run_ = false;
  first_token_ = true;
  lead_left_ = p_->strip_start();
  tail_.clear();
}

std::string DecodeState::emit(std::string text) {
  const DecoderPipeline& p = *p_;
  if (p.strip_content().empty() || text.empty()) return text;
  const std::string& c = p.strip_content();
  if (lead_left_ > 0) {
    // Drop leading content characters until `start` were examined or another character shows up.
    size_t off = 0;
    while (lead_left_ > 0 && off < text.size()) {
      if (text.compare(off, c.size(), c) == 0) {
        off += c.size();
        --lead_left_;
      } else {
        lead_left_ = 0;
      }
    }
    text.erase(0, off);
    if (text.empty()) return text;
  }
  if (p.strip_stop() == 0) return text;
  // Hold back the trailing run of content characters: they are dropped if nothing follows.
  text.insert(0, tail_);
  size_t end = text.size();
  while (end >= c.size() && text.compare(end - c.size(), c.size(), c) == 0) end -= c.size();
  tail_ = text.substr(end);
  text.resize(end);
  return text;
}

std::string DecodeState::push(std::string_view token) {
  const DecoderPipeline& p = *p_;
  if (!p.has_decoder()) {
    std::string out;
    if (!first_token_) out += ' ';
    out.append(token);
    first_token_ = false;
    return out;
  }
  const std::string m = p.map_token(token);
  uint8_t b;
  if (p.byte_of(m, b)) {
    // A byte run is decided only when it ends (one bad byte turns the whole run into U+FFFD).
    pending_bytes_ += char(b);
    in_run_ = true;
    return {};
  }
  std::string out;
  if (in_run_) out = decode_byte_run(pending_bytes_);
  pending_bytes_.clear();
  in_run_ = false;
  out += m;
  return emit(std::move(out));
}

std::string DecodeState::flush() {
  std::string out;
  if (in_run_) out = emit(decode_byte_run(pending_bytes_));
  pending_bytes_.clear();
  in_run_ = false;
  // Trailing Strip: of the held content characters, the last `stop` ones are dropped.
  if (!tail_.empty()) {
    const std::string& c = p_->strip_content();
    const size_t n = tail_.size() / c.size();
    const size_t keep = n > p_->strip_stop() ? n - p_->strip_stop() : 0;
    out += tail_.substr(0, keep * c.size());
    tail_.clear();
  }
  return out;
}

}  // namespace mcpm
