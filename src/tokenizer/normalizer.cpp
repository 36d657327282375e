// Normalizer steps (see normalizer.h).
#include "tokenizer/normalizer.h"

#include <utf8proc.h>

#include <cstdlib>

#include "tokenizer/utf8.h"

namespace mcpm {

std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size() + s.size() / 4);
  size_t i = 0;
  while (true) {
    const size_t j = s.find(from, i);
    if (j == std::string_view::npos) break;
    out.append(s.substr(i, j - i));
    out.append(to);
    i = j + from.size();
  }
  out.append(s.substr(i));
  return out;
}

static std::string string_pattern(const json& j, const std::string& where) {
  MCPM_CHECK(j.contains("pattern") && j["pattern"].is_object(), "{}: Replace needs a 'pattern' object", where);
  const json& p = j["pattern"];
  MCPM_CHECK(!p.contains("Regex"), "{}: Replace with a Regex pattern is not supported (only {{\"String\": ...}})",
             where);
  MCPM_CHECK(p.contains("String") && p["String"].is_string() && !p["String"].get<std::string>().empty(),
             "{}: Replace pattern must be {{\"String\": \"<non-empty>\"}}", where);
  return p["String"].get<std::string>();
}

void Normalizer::parse_into(const json& j, const std::string& where, std::vector<Step>& out) {
  if (j.is_null()) return;
  MCPM_CHECK(j.is_object() && j.contains("type") && j["type"].is_string(),
             "{}: expected an object with a string 'type'", where);
  const std::string type = j["type"];
  if (type == "Sequence") {
    MCPM_CHECK(j.contains("normalizers") && j["normalizers"].is_array(), "{}: Sequence needs a 'normalizers' list",
               where);
    for (size_t i = 0; i < j["normalizers"].size(); ++i)
      parse_into(j["normalizers"][i], fmt::format("{}.normalizers[{}]", where, i), out);
  } else if (type == "Prepend") {
    MCPM_CHECK(j.contains("prepend") && j["prepend"].is_string(), "{}: Prepend needs a string 'prepend'", where);
    out.push_back({Kind::Prepend, j["prepend"].get<std::string>(), ""});
  } else if (type == "Replace") {
    MCPM_CHECK(j.contains("content") && j["content"].is_string(), "{}: Replace needs a string 'content'", where);
    out.push_back({Kind::Replace, string_pattern(j, where), j["content"].get<std::string>()});
  } else if (type == "NFC") {
    out.push_back({Kind::NFC, "", ""});
  } else if (type == "NFD") {
    out.push_back({Kind::NFD, "", ""});
  } else if (type == "NFKC") {
    out.push_back({Kind::NFKC, "", ""});
  } else if (type == "NFKD") {
    out.push_back({Kind::NFKD, "", ""});
  } else {
    fail("{}: normalizer type '{}' is not supported (supported: Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD)",
         where, type);
  }
}

Normalizer Normalizer::from_json(const json& j, const std::string& where) {
  Normalizer n;
  parse_into(j, where, n.steps_);
  return n;
}

static std::string unicode_normalize(std::string_view s, int options) {
  if (!utf8::is_valid(s)) return std::string(s);  // malformed bytes are left alone
  utf8proc_uint8_t* out = nullptr;
  const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()), utf8proc_ssize_t(s.size()), &out,
                              static_cast<utf8proc_option_t>(options | UTF8PROC_STABLE));
  if (n < 0) return std::string(s);
  std::string r(reinterpret_cast<const char*>(out), size_t(n));
  std::free(out);
  return r;
}

std::string Normalizer::apply(std::string_view text) const {
  std::string s(text);
  for (const Step& st : steps_) {
    switch (st.kind) {
      case Kind::Prepend:
        if (!s.empty()) s.insert(0, st.a);  // tokenizers prepends only to non-empty strings
        break;
      case Kind::Replace: s = replace_all(s, st.a, st.b); break;
      case Kind::NFC: s = unicode_normalize(s, UTF8PROC_COMPOSE); break;
      case Kind::NFD: s = unicode_normalize(s, UTF8PROC_DECOMPOSE); break;
      case Kind::NFKC: s = unicode_normalize(s, UTF8PROC_COMPOSE | UTF8PROC_COMPAT); break;
      case Kind::NFKD: s = unicode_normalize(s, UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT); break;
    }
  }
  return s;
}

}  // namespace mcpm
