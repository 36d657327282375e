// Fuzz target: the Jinja chat-template interpreter on raw template text (parse, then render with the
// globals transformers passes: messages, add_generation_prompt, special token names).
#include <cstdint>
#include <string>

#include "core/error.h"
#include "tokenizer/jinja.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using mcpm::jinja::Value;
  const std::string src(reinterpret_cast<const char*>(data), size);
  try {
    const mcpm::jinja::Template t(src, "fuzz chat_template");
    for (bool gen : {false, true}) {
      mcpm::jinja::Dict g;
      mcpm::jinja::List msgs;
      for (const auto& [role, content] : {std::pair{"system", "Be brief."}, {"user", "Hi {{x}}"},
                                          {"assistant", "Hello"}, {"user", "Bye"}}) {
        mcpm::jinja::Dict d;
        d.set("role", Value::string(role));
        d.set("content", Value::string(content));
        msgs.push_back(Value::make_dict(std::move(d)));
      }
      g.set("messages", Value::make_list(std::move(msgs)));
      g.set("add_generation_prompt", Value::boolean(gen));
      g.set("bos_token", Value::string("<s>"));
      g.set("eos_token", Value::string("<|im_end|>"));
      mcpm::jinja::List extra;
      extra.push_back(Value::string("<|im_start|>"));
      g.set("additional_special_tokens", Value::make_list(std::move(extra)));
      (void)t.render(g);
    }
  } catch (const mcpm::Error&) {
  }
  return 0;
}
