// What the tokenizer fuzz targets do with a tokenizer that loaded: encode text with special tokens
// and odd UTF-8, decode it (whole and streaming), render and encode a chat.
#pragma once
#include <string>
#include <vector>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace mcpm::fuzz {

inline void exercise_tokenizer(const Tokenizer& tok) {
  const std::string text = "Hello world 你好\n\n  <|im_start|>user <s></s> \xF0\x9F\x98\x80 \xC3 tab\t1234";
  const std::vector<int32_t> ids = tok.encode(text, true);
  (void)tok.decode(ids, false);
  (void)tok.decode(ids, true);
  StreamingDecoder sd(tok, false);
  for (int32_t id : ids) (void)sd.push(id);
  (void)sd.flush();
  for (int32_t id : ids) (void)tok.piece(id);
  (void)tok.token_id("<|im_end|>");
  const int64_t n = tok.vocab_size();
  for (int64_t id : {int64_t(0), n / 2, n - 1})
    if (id >= 0 && id < n) {
      (void)tok.is_special(int32_t(id));
      (void)tok.decode({int32_t(id)});
    }
  const std::vector<ChatMessage> chat = {
      {"system", "You are helpful."}, {"user", "Hi <|im_end|>"}, {"assistant", "Hello!"}, {"user", "2+2?"}};
  try {
    const std::string s = tok.apply_chat_template(chat, true);
    (void)tok.encode(s, true);
    (void)tok.apply_chat_template({}, false);
  } catch (const Error&) {  // a template error (raise_exception, bad syntax) is reported here
  }
}

}  // namespace mcpm::fuzz
