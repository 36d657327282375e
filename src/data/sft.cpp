// SFT records -> masked token shards (see sft.h).
#include "data/sft.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "data/progress.h"
#include "data/shard.h"
#include "data/text_reader.h"

namespace fs = std::filesystem;

namespace mcpm::data {

SftFormat parse_sft_format(const std::string& s) {
  if (s == "auto") return SftFormat::Auto;
  if (s == "alpaca") return SftFormat::Alpaca;
  if (s == "sharegpt") return SftFormat::ShareGpt;
  if (s == "qa") return SftFormat::Qa;
  fail("unknown SFT format '{}' (expected auto, alpaca, sharegpt or qa)", s);
}

namespace {

std::string str_field(const json& r, const char* key, const std::string& where, bool required = true) {
  if (!r.contains(key) || r[key].is_null()) {
    MCPM_CHECK(!required, "{}: field '{}' is missing", where, key);
    return "";
  }
  MCPM_CHECK(r[key].is_string(), "{}: field '{}' must be a string", where, key);
  return r[key].get<std::string>();
}

std::string sharegpt_role(const std::string& from, const std::string& where) {
  if (from == "human" || from == "user") return "user";
  if (from == "gpt" || from == "assistant" || from == "chatgpt" || from == "bard" || from == "bing") return "assistant";
  if (from == "system") return "system";
  fail("{}: unknown speaker '{}' (expected human/user, gpt/assistant or system)", where, from);
}

}  // namespace

std::vector<ChatMessage> record_to_messages(const json& r, SftFormat format, const std::string& system,
                                            const std::string& where) {
  MCPM_CHECK(r.is_object(), "{}: a record must be a JSON object", where);
  if (format == SftFormat::Auto) {
    if (r.contains("conversations")) format = SftFormat::ShareGpt;
    else if (r.contains("instruction") && r.contains("output")) format = SftFormat::Alpaca;
    else if (r.contains("question") && r.contains("answer")) format = SftFormat::Qa;
    else fail("{}: unknown record format (expected alpaca instruction/input/output, sharegpt conversations, or question/answer)", where);
  }
  std::vector<ChatMessage> m;
  if (!system.empty()) m.push_back({"system", system});
  switch (format) {
    case SftFormat::Alpaca: {
      std::string user = str_field(r, "instruction", where);
      const std::string input = str_field(r, "input", where, false);
      if (!input.empty()) user += "\n\n" + input;
      m.push_back({"user", user});
      m.push_back({"assistant", str_field(r, "output", where)});
      break;
    }
    case SftFormat::Qa:
      m.push_back({"user", str_field(r, "question", where)});
      m.push_back({"assistant", str_field(r, "answer", where)});
      break;
    case SftFormat::ShareGpt: {
      // find(), not operator[]: on a const json a missing key is undefined behaviour (found by
      // fuzz_records: --format sharegpt on a record without 'conversations' read freed memory).
      const auto conv = r.find("conversations");
      MCPM_CHECK(conv != r.end() && conv->is_array(), "{}: 'conversations' must be a list", where);
      for (size_t i = 0; i < conv->size(); ++i) {
        const json& t = (*conv)[i];
        const std::string w = fmt::format("{}.conversations[{}]", where, i);
        MCPM_CHECK(t.is_object(), "{}: expected an object with 'from' and 'value'", w);
        const std::string role = sharegpt_role(str_field(t, "from", w), w);
        if (role == "system" && !system.empty()) continue;  // the explicit system message wins
        m.push_back({role, str_field(t, "value", w)});
      }
      if (r.contains("chosen") && r["chosen"].is_object()) {
        const std::string w = where + ".chosen";
        m.push_back({sharegpt_role(str_field(r["chosen"], "from", w), w), str_field(r["chosen"], "value", w)});
      }
      break;
    }
    case SftFormat::Auto: break;
  }
  const bool has_assistant =
      std::any_of(m.begin(), m.end(), [](const ChatMessage& x) { return x.role == "assistant" && !x.content.empty(); });
  if (!has_assistant) m.clear();
  return m;
}

void render_conversation(const Tokenizer& tok, const std::vector<ChatMessage>& messages, std::vector<int32_t>& ids,
                         std::vector<uint8_t>& mask) {
  ids = tok.encode_chat(messages, false, true);
  mask.assign(ids.size(), 0);
  const std::optional<int32_t> end = tok.token_id("<|im_end|>");
  MCPM_CHECK(end, "{}: the tokenizer has no <|im_end|> token (needed to mark where assistant turns end)", tok.source());
  std::vector<ChatMessage> prefix;
  for (const ChatMessage& msg : messages) {
    if (msg.role == "assistant") {
      // Tokens before the content: everything up to "<|im_start|>assistant\n".
      const std::vector<int32_t> head = tok.encode_chat(prefix, true, true);
      size_t a = 0;
      while (a < head.size() && a < ids.size() && head[a] == ids[a]) ++a;  // == head.size() unless merges cross it
      size_t e = a;
      while (e < ids.size() && ids[e] != *end) ++e;
      for (size_t i = a; i < std::min(e + 1, ids.size()); ++i) mask[i] = 1;
    }
    prefix.push_back(msg);
  }
}

std::string SftStats::summary() const {
  std::string s = fmt::format("{} conversations, {} tokens ({} assistant tokens in the loss, {:.0f}%)", records, tokens,
                              target_tokens, tokens ? 100.0 * double(target_tokens) / double(tokens) : 0.0);
  if (truncated) s += fmt::format(", {} truncated", truncated);
  if (skipped) s += fmt::format(", {} records without an assistant answer skipped", skipped);
  if (eval_records) s += fmt::format("; held out: {} conversations, {} tokens", eval_records, eval_tokens);
  return s;
}

SftStats write_sft_shards(const SftOptions& o) {
  MCPM_CHECK(!o.inputs.empty(), "sft: no input files");
  MCPM_CHECK(!o.out.empty(), "sft: no output shard (-o FILE)");
  MCPM_CHECK(o.eval_fraction >= 0 && o.eval_fraction < 1, "sft: --eval-fraction must be in [0, 1)");
  MCPM_CHECK(o.eval_fraction == 0 || !o.eval_out.empty(), "sft: --eval-fraction needs --eval-out FILE");
  const auto tok = Tokenizer::load(o.tokenizer_dir);
  const int32_t bos = tok->bos_id(), eos = tok->token_id("<|im_end|>").value_or(-1);
  MCPM_CHECK(bos >= 0 && tok->adds_bos(), "{}: SFT shards need a tokenizer that starts every text with BOS", o.tokenizer_dir);
  ShardWriter train(o.out, uint32_t(tok->vocab_size()), true, bos, eos);
  std::unique_ptr<ShardWriter> eval;
  if (!o.eval_out.empty()) eval = std::make_unique<ShardWriter>(o.eval_out, uint32_t(tok->vocab_size()), true, bos, eos);
  SftStats st;
  std::vector<int32_t> ids;
  std::vector<uint8_t> mask;
  for (const auto& path : o.inputs) {
    const std::vector<json> records = read_records(path);
    const size_t first_eval = records.size() - size_t(std::ceil(o.eval_fraction * double(records.size())));
    ProgressBar bar(fs::path(path).filename().string(), records.size(), "records", o.progress);
    for (size_t i = 0; i < records.size(); ++i) {
      const auto msgs = record_to_messages(records[i], o.format, o.system, fmt::format("{}: record {}", path, i));
      if (msgs.empty()) {
        st.skipped++;
        continue;
      }
      render_conversation(*tok, msgs, ids, mask);
      if (o.max_tokens > 0 && int64_t(ids.size()) > o.max_tokens) {
        ids.resize(size_t(o.max_tokens));
        mask.resize(size_t(o.max_tokens));
        st.truncated++;
      }
      if (i >= first_eval) {
        eval->add_document(ids, mask);
        st.eval_records++;
        st.eval_tokens += ids.size();
      } else {
        train.add_document(ids, mask);
        st.records++;
        st.tokens += ids.size();
        for (uint8_t m : mask) st.target_tokens += m;
      }
      bar.update(i + 1);
    }
    bar.finish();
  }
  MCPM_CHECK(st.records > 0, "sft: no training records");
  train.finish();
  if (eval) {
    MCPM_CHECK(st.eval_records > 0, "sft: the held-out split is empty");
    eval->finish();
  }
  return st;
}

}  // namespace mcpm::data
