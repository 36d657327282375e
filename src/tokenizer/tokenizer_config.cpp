// Reading tokenizer_config.json, special_tokens_map.json and added_tokens.json (all optional).
#include <algorithm>
#include <filesystem>

#include "core/mapped_file.h"
#include "tokenizer/tokenizer_impl.h"

namespace mcpm {

namespace fs = std::filesystem;

// A special-token value: "text", {"content": "text", ...} or null.
static std::optional<std::string> token_text(const json& v, const std::string& where) {
  if (v.is_null()) return std::nullopt;
  if (v.is_string()) return v.get<std::string>();
  MCPM_CHECK(v.is_object() && v.contains("content") && v["content"].is_string(),
             "{}: expected a string or an object with a string 'content'", where);
  return v["content"].get<std::string>();
}

static bool flag(const json& o, const char* key, bool dflt, const std::string& where) {
  if (!o.contains(key) || o[key].is_null()) return dflt;
  MCPM_CHECK(o[key].is_boolean(), "{}: field '{}' must be a boolean", where, key);
  return o[key].get<bool>();
}

static void read_special_names(const json& j, const std::string& path, TokenizerConfig& c, bool fill_only) {
  const auto set = [&](const char* key, std::optional<std::string>& slot) {
    if (!j.contains(key)) return;
    if (fill_only && slot) return;
    if (auto t = token_text(j[key], path + ": " + key)) slot = *t;
  };
  set("bos_token", c.bos);
  set("eos_token", c.eos);
  set("unk_token", c.unk);
  set("pad_token", c.pad);
  if (j.contains("additional_special_tokens") && !j["additional_special_tokens"].is_null()) {
    const json& a = j["additional_special_tokens"];
    MCPM_CHECK(a.is_array(), "{}: 'additional_special_tokens' must be a list", path);
    for (size_t i = 0; i < a.size(); ++i)
      if (auto t = token_text(a[i], fmt::format("{}: additional_special_tokens[{}]", path, i))) {
        if (std::find(c.additional_special.begin(), c.additional_special.end(), *t) == c.additional_special.end())
          c.additional_special.push_back(*t);
      }
  }
}

std::vector<std::string> config_special_names(const TokenizerConfig& c) {
  std::vector<std::string> out;
  const auto add = [&](const std::string& s) {
    if (!s.empty() && std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
  };
  for (const auto* o : {&c.bos, &c.eos, &c.unk, &c.pad})
    if (*o) add(**o);
  for (const auto& s : c.additional_special) add(s);
  return out;
}

TokenizerConfig read_tokenizer_config(const std::string& dir) {
  TokenizerConfig c;
  const std::string cfg_path = dir + "/tokenizer_config.json";
  if (fs::exists(cfg_path)) {
    const json j = parse_json_file(cfg_path);
    MCPM_CHECK(j.is_object(), "{}: expected a JSON object", cfg_path);
    read_special_names(j, cfg_path, c, false);
    if (j.contains("add_bos_token") && !j["add_bos_token"].is_null()) c.add_bos = flag(j, "add_bos_token", true, cfg_path);
    if (j.contains("add_eos_token") && !j["add_eos_token"].is_null()) c.add_eos = flag(j, "add_eos_token", false, cfg_path);
    if (j.contains("tokenizer_class") && j["tokenizer_class"].is_string()) c.tokenizer_class = j["tokenizer_class"];
    if (j.contains("added_tokens_decoder") && !j["added_tokens_decoder"].is_null()) {
      const json& d = j["added_tokens_decoder"];
      MCPM_CHECK(d.is_object(), "{}: 'added_tokens_decoder' must be an object of id -> token", cfg_path);
      for (const auto& [key, v] : d.items()) {
        const std::string w = fmt::format("{}: added_tokens_decoder[\"{}\"]", cfg_path, key);
        AddedToken t;
        try {
          size_t used = 0;
          const long long id = std::stoll(key, &used);
          MCPM_CHECK(used == key.size() && id >= 0 && id < (1LL << 24), "{}: the key must be a token id below 2^24", w);
          t.id = int32_t(id);
        } catch (const std::logic_error&) {
          fail("{}: the key must be a token id", w);
        }
        MCPM_CHECK(v.is_object() && v.contains("content") && v["content"].is_string(),
                   "{}: expected an object with a string 'content'", w);
        t.content = v["content"];
        t.special = flag(v, "special", false, w);
        t.single_word = flag(v, "single_word", false, w);
        t.lstrip = flag(v, "lstrip", false, w);
        t.rstrip = flag(v, "rstrip", false, w);
        t.normalized = flag(v, "normalized", !t.special, w);
        c.added_tokens.push_back(std::move(t));
      }
    }
    if (j.contains("chat_template") && !j["chat_template"].is_null()) {
      const json& t = j["chat_template"];
      c.chat_template_where = cfg_path + ": chat_template";
      if (t.is_string()) {
        c.chat_template = t.get<std::string>();
      } else if (t.is_array()) {  // [{"name": ..., "template": ...}]: transformers uses "default"
        for (const auto& e : t)
          if (e.is_object() && e.value("name", json()) == "default" && e.contains("template") && e["template"].is_string())
            c.chat_template = e["template"].get<std::string>();
        if (!c.chat_template)
          c.chat_template_error = cfg_path + ": chat_template is a list of named templates without a \"default\" one";
      } else {
        c.chat_template_error = cfg_path + ": chat_template must be a string";
      }
    }
  }
  const std::string map_path = dir + "/special_tokens_map.json";
  if (fs::exists(map_path)) {
    const json j = parse_json_file(map_path);
    MCPM_CHECK(j.is_object(), "{}: expected a JSON object", map_path);
    read_special_names(j, map_path, c, true);
  }
  const std::string added_path = dir + "/added_tokens.json";
  if (fs::exists(added_path)) {
    const json j = parse_json_file(added_path);
    MCPM_CHECK(j.is_object(), "{}: expected a JSON object of token -> id", added_path);
    for (const auto& [content, id] : j.items()) {
      MCPM_CHECK(id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() < (1LL << 24),
                 "{}: the id of '{}' must be an integer in [0, 2^24)", added_path, content);
      bool known = false;
      for (const auto& t : c.added_tokens) known = known || t.id == id.get<int32_t>();
      if (known) continue;
      AddedToken t;
      t.id = id.get<int32_t>();
      t.content = content;
      c.added_tokens.push_back(std::move(t));  // special-ness is settled by the loader from the names
    }
  }
  const std::string jinja_path = dir + "/chat_template.jinja";
  if (fs::exists(jinja_path)) {
    c.chat_template = read_file(jinja_path);
    c.chat_template_where = jinja_path;
    c.chat_template_error.clear();
  }
  return c;
}

}  // namespace mcpm
