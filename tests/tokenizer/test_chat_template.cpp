// Chat templates: the Jinja subset against renderings by HF's @huggingface/jinja (golden.json), the
// MiniCPM4 template, the ChatML fallback, Python-Jinja details and error reporting.
#include <filesystem>

#include "core/error.h"
#include "tok_test_util.h"
#include "tokenizer/jinja.h"

using namespace mcpm;
using namespace mcpm::test;
using jinja::Dict;
using jinja::Value;

namespace {

Dict globals_for(const nlohmann::json& messages, bool add_generation_prompt) {
  Dict g;
  jinja::List msgs;
  for (const auto& m : messages) {
    Dict d;
    for (const auto& [k, v] : m.items()) d.set(k, Value::string(v.get<std::string>()));
    msgs.push_back(Value::make_dict(std::move(d)));
  }
  g.set("messages", Value::make_list(std::move(msgs)));
  g.set("add_generation_prompt", Value::boolean(add_generation_prompt));
  for (const auto& [k, v] : tokenizer_golden()["special_tokens"].items()) g.set(k, Value::string(v.get<std::string>()));
  return g;
}

std::string render(const std::string& src, const Dict& g = Dict()) { return jinja::Template(src, "test.jinja").render(g); }

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

Dict messages_dict(std::vector<std::pair<std::string, std::string>> msgs) {
  Dict g;
  jinja::List l;
  for (auto& [r, c] : msgs) {
    Dict d;
    d.set("role", Value::string(r));
    d.set("content", Value::string(c));
    l.push_back(Value::make_dict(std::move(d)));
  }
  g.set("messages", Value::make_list(std::move(l)));
  return g;
}

// A tiny tokenizer.json folder (vocab of the ASCII letters) with the given tokenizer_config.json.
std::string tiny_folder(const std::string& tag, const std::string& tokenizer_config) {
  const std::string dir = temp_dir(tag);
  std::string vocab = "\"<s>\": 0, \"</s>\": 1";
  int id = 2;
  for (char c = 'a'; c <= 'z'; ++c) vocab += fmt::format(", \"{}\": {}", c, id++);
  write_text(dir, "tokenizer.json",
             "{\"model\": {\"type\": \"BPE\", \"vocab\": {" + vocab + "}, \"merges\": []}, \"added_tokens\": [" +
                 "{\"id\": 0, \"content\": \"<s>\", \"special\": true}, {\"id\": 1, \"content\": \"</s>\", \"special\": true}]}");
  if (!tokenizer_config.empty()) write_text(dir, "tokenizer_config.json", tokenizer_config);
  return dir;
}

}  // namespace

TEST(TokenizerChatTemplate, GoldenRenderings) {
  const auto& g = tokenizer_golden();
  std::map<std::string, int> per_template;
  for (const auto& c : g["chat"]) {
    const std::string name = c["name"], tname = c["template"];
    SCOPED_TRACE(name);
    const jinja::Template t(g["templates"][tname].get<std::string>(), tname);
    EXPECT_EQ(escape(t.render(globals_for(c["messages"], c["add_generation_prompt"]))), escape(c["rendered"]));
    ++per_template[tname];
  }
  EXPECT_EQ(per_template.size(), 6u);
  for (const auto& [k, n] : per_template) EXPECT_GE(n, 8) << k;
}

TEST(TokenizerChatTemplate, GoldenRaiseException) {
  const auto& g = tokenizer_golden();
  ASSERT_FALSE(g["chat_errors"].empty());
  for (const auto& c : g["chat_errors"]) {
    const jinja::Template t(g["templates"][c["template"].get<std::string>()].get<std::string>(), "llama2.jinja");
    const std::string msg = error_of([&] { t.render(globals_for(c["messages"], c["add_generation_prompt"])); });
    EXPECT_NE(msg.find(c["error"].get<std::string>()), std::string::npos) << msg;
    EXPECT_NE(msg.find("llama2.jinja"), std::string::npos) << msg;
  }
}

TEST(TokenizerChatTemplate, MiniCPM4MultiTurn) {
  MCPM_REQUIRE_SHARED();
  const Tokenizer& t = minicpm4_tokenizer();
  const std::vector<ChatMessage> msgs = {
      {"system", "You are MiniCPM."}, {"user", "Hi"}, {"assistant", "Hello!"}, {"user", "2+2?"}};
  const std::string expected =
      "<|im_start|>system\nYou are MiniCPM.<|im_end|>\n"
      "<|im_start|>user\nHi<|im_end|>\n"
      "<|im_start|>assistant\nHello!<|im_end|>\n"
      "<|im_start|>user\n2+2?<|im_end|>\n";
  EXPECT_EQ(t.apply_chat_template(msgs, false), expected);
  EXPECT_EQ(t.apply_chat_template(msgs, true), expected + "<|im_start|>assistant\n");
  EXPECT_EQ(t.apply_chat_template({}, true), "<|im_start|>assistant\n");
  // BOS is not part of the template; HF tokenizer(rendered) adds it.
  const auto ids = t.encode_chat(msgs, true);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(ids[1], 73441);
  EXPECT_EQ(t.encode_chat(msgs, true, false), std::vector<int32_t>(ids.begin() + 1, ids.end()));
}

TEST(TokenizerChatTemplate, ChatMLFallbackWithoutTemplate) {
  const auto t = Tokenizer::load(tiny_folder("nochat", "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}"));
  EXPECT_FALSE(t->has_chat_template());
  EXPECT_EQ(t->apply_chat_template({{"user", "hi"}, {"assistant", "yo"}}, true),
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nyo<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(t->apply_chat_template({{"user", "hi"}}, false), "<|im_start|>user\nhi<|im_end|>\n");
}

TEST(TokenizerChatTemplate, TemplateFromConfigUsesSpecialTokens) {
  const auto t = Tokenizer::load(tiny_folder(
      "cfg", R"({"bos_token": "<s>", "eos_token": {"content": "</s>"},
                 "chat_template": "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{{ eos_token }}{% endfor %}"})"));
  EXPECT_TRUE(t->has_chat_template());
  EXPECT_EQ(t->apply_chat_template({{"user", "q"}, {"assistant", "a"}}, false), "<s>[user]q</s>[assistant]a</s>");
  EXPECT_EQ(t->bos_id(), 0);
  EXPECT_EQ(t->eos_id(), 1);
}

TEST(TokenizerChatTemplate, ErrorsNameTokenizerConfig) {
  // Unsupported syntax: loading still works (text encoding does not need the template), applying
  // the template reports the problem with the file, the field and the position.
  const auto t = Tokenizer::load(tiny_folder("unsupported", R"({"chat_template": "{% for m in messages %}\n{% macro f() %}x{% endmacro %}{% endfor %}"})"));
  EXPECT_TRUE(t->has_chat_template());
  EXPECT_EQ(t->encode("ab", false), (std::vector<int32_t>{2, 3}));
  const std::string msg = error_of([&] { t->apply_chat_template({{"user", "x"}}, true); });
  EXPECT_NE(msg.find("tokenizer_config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("chat_template"), std::string::npos) << msg;
  EXPECT_NE(msg.find("macro"), std::string::npos) << msg;
  EXPECT_NE(msg.find("line 2"), std::string::npos) << msg;

  const auto r = Tokenizer::load(
      tiny_folder("raise", R"({"chat_template": "{% if messages[0].role != 'system' %}{{ raise_exception('need a system message') }}{% endif %}"})"));
  const std::string m2 = error_of([&] { r->apply_chat_template({{"user", "x"}}, true); });
  EXPECT_NE(m2.find("need a system message"), std::string::npos) << m2;
  EXPECT_NE(m2.find("tokenizer_config.json"), std::string::npos) << m2;

  const auto b = Tokenizer::load(tiny_folder("badtype", R"({"chat_template": 42})"));
  EXPECT_NE(error_of([&] { b->apply_chat_template({}, true); }).find("chat_template must be a string"), std::string::npos);
}

TEST(TokenizerChatTemplate, SyntaxErrors) {
  for (const char* src : {"{{ 'unterminated", "{% if x %}no end", "{% for %}{% endfor %}", "{{ a + }}", "{% endif %}",
                          "{% include 'x.html' %}", "{{ x | }}", "{# open comment", "{% if a %}{% else %}{% else %}{% endif %}",
                          "{{ (1, 2 }}", "{% break %}"}) {
    const std::string msg = error_of([&] { jinja::Template t(src, "bad.jinja"); });
    EXPECT_NE(msg.find("bad.jinja"), std::string::npos) << src << " -> " << msg;
    EXPECT_NE(msg.find("line 1"), std::string::npos) << src << " -> " << msg;
  }
}

TEST(TokenizerChatTemplate, DeepNestingIsAnErrorNotACrash) {
  std::string deep_expr = "{{ " + std::string(100000, '(') + "1" + std::string(100000, ')') + " }}";
  EXPECT_NE(error_of([&] { jinja::Template t(deep_expr, "deep.jinja"); }).find("nested too deeply"), std::string::npos);
  std::string deep_blocks;
  for (int i = 0; i < 5000; ++i) deep_blocks += "{% if true %}";
  EXPECT_NE(error_of([&] { jinja::Template t(deep_blocks, "deep.jinja"); }).find("nested too deeply"), std::string::npos);
  std::string ok;
  for (int i = 0; i < 50; ++i) ok += "{% if true %}";
  ok += "x";
  for (int i = 0; i < 50; ++i) ok += "{% endif %}";
  EXPECT_EQ(render(ok), "x");
}

TEST(TokenizerChatTemplate, RuntimeErrors) {
  EXPECT_NE(error_of([] { render("{{ missing.attr }}"); }).find("'missing' is undefined"), std::string::npos);
  EXPECT_NE(error_of([] { render("{{ 'a' + 1 }}"); }).find("unsupported operand"), std::string::npos);
  EXPECT_NE(error_of([] { render("{{ x | frobnicate }}"); }).find("unsupported filter 'frobnicate'"), std::string::npos);
  EXPECT_NE(error_of([] { render("{{ foo() }}"); }).find("unknown function 'foo'"), std::string::npos);
  EXPECT_NE(error_of([] { render("{% set ns = 1 %}{% set ns.x = 2 %}"); }).find("namespace"), std::string::npos);
  EXPECT_NE(error_of([] { render("{{ 1 // 0 }}"); }).find("division by zero"), std::string::npos);
  EXPECT_NE(error_of([] { render("{% for a, b in [1] %}{% endfor %}"); }).find("unpack"), std::string::npos);
}

// Found by fuzz_jinja: a long integer literal escaped as std::out_of_range from std::stoll; a huge
// float through |int was an undefined float-to-int conversion.
TEST(TokenizerChatTemplate, NumbersOutOfRange) {
  EXPECT_NE(error_of([] { jinja::Template t("{{ 444444444444444444444444444444 }}", "big.jinja"); })
                .find("big.jinja: integer literal 444444444444444444444444444444 does not fit in 64 bits"),
            std::string::npos);
  EXPECT_EQ(render("{{ 9223372036854775807 }}"), "9223372036854775807");
  EXPECT_NE(error_of([] { render("{{ (99999999999999999999999.0)|int }}"); }).find("does not fit in 64 bits"),
            std::string::npos);
  EXPECT_EQ(render("{{ 2.75|int }} {{ -2.75|int }}"), "2 -2");
  // Found by fuzz_jinja (UBSan): signed overflow in integer arithmetic.
  for (const char* src : {"{{ 994014980014994001 * 999 }}", "{{ 9223372036854775807 + 1 }}", "{{ -9223372036854775807 - 2 }}",
                          "{{ 3 ** 100 }}", "{{ (-9223372036854775807 - 1) // -1 }}", "{{ -(-9223372036854775807 - 1) }}",
                          "{{ (-9223372036854775807 - 1)|abs }}"})
    EXPECT_NE(error_of([&] { render(src); }).find("integer overflow"), std::string::npos) << src;
  EXPECT_EQ(render("{{ 2 ** 62 }} {{ (-1) ** 101 }} {{ 1 ** 1000 }} {{ 0 ** 0 }} {{ (-9223372036854775807 - 1) % -1 }} {{ -7 // 2 }}"),
            "4611686018427387904 -1 1 1 0 -4");
}

// Values print as Python's str() (what HF's Jinja prints), not as JavaScript would.
TEST(TokenizerChatTemplate, PythonPrinting) {
  EXPECT_EQ(render("{{ true }} {{ false }} {{ none }} {{ 1 == 1 }}"), "True False None True");
  EXPECT_EQ(render("{{ undefined_thing }}|{{ 3 }}|{{ 2.5 }}|{{ 1.0 }}|{{ 7 / 2 }}|{{ 2 ** 10 }}"), "|3|2.5|1.0|3.5|1024");
  EXPECT_EQ(render("{{ [1, 'a', none] }} {{ {'k': 'v'} }}"), "[1, 'a', None] {'k': 'v'}");
  EXPECT_EQ(render("{{ \"it's\" ~ [\"it's\"] }}"), "it's[\"it's\"]");
  // transformers' tojson: json.dumps(ensure_ascii=False) separators.
  EXPECT_EQ(render("{{ {'a': 1, 'b': [true, none, 'x\"y'], 'c': '中'} | tojson }}"),
            "{\"a\": 1, \"b\": [true, null, \"x\\\"y\"], \"c\": \"中\"}");
  EXPECT_EQ(render("{{ {'a': [1, 2]} | tojson(indent=2) }}"), "{\n  \"a\": [\n    1,\n    2\n  ]\n}");
}

// trim_blocks + lstrip_blocks (transformers' environment), "-" and "+" markers, trailing newline.
TEST(TokenizerChatTemplate, WhitespaceControl) {
  EXPECT_EQ(render("a\n{% if true %}\nb\n{% endif %}\nc"), "a\nb\nc");            // trim_blocks
  EXPECT_EQ(render("a\n    {% if true %}x{% endif %}\n"), "a\nx");               // lstrip_blocks + no trailing \n
  EXPECT_EQ(render("a  {% if true %}x{% endif %}"), "a  x");                     // not at line start
  EXPECT_EQ(render("a\n  {%+ if true %}x{% endif %}"), "a\n  x");                // "+": no lstrip
  EXPECT_EQ(render("{% if true +%}\nx{% endif %}"), "\nx");                     // "+": no trim
  EXPECT_EQ(render("a  \n  {{- 'b' -}}  \n  c"), "abc");
  EXPECT_EQ(render("a\n  {{ 'b' }}\n"), "a\n  b");                               // {{ }} is not a block
  EXPECT_EQ(render("x\n\n"), "x\n");                                             // only one newline dropped
  EXPECT_EQ(render("a\r\nb"), "a\nb");                                           // newlines normalized
  EXPECT_EQ(render("{# c #}\nx"), "x");                                          // comments trim too
}

TEST(TokenizerChatTemplate, LoopsAndScopes) {
  const Dict g = messages_dict({{"system", "S"}, {"user", "U1"}, {"assistant", "A1"}, {"user", "U2"}});
  EXPECT_EQ(render("{% for m in messages %}{{ loop.index }}{{ loop.revindex0 }}{% if loop.first %}F{% endif %}"
                   "{% if loop.last %}L{% endif %}{{ loop.cycle('a', 'b') }},{% endfor %}",
                   g),
            "13Fa,22b,31a,40Lb,");
  EXPECT_EQ(render("{% for m in messages %}{% if m.role == 'assistant' %}{% break %}{% endif %}{{ m.content }}{% endfor %}", g),
            "SU1");
  EXPECT_EQ(render("{% for m in messages %}{% if loop.index0 is even %}{% continue %}{% endif %}{{ m.content }}{% endfor %}", g),
            "U1U2");
  EXPECT_EQ(render("{% for m in messages if m.role == 'tool' %}x{% else %}none{% endfor %}", g), "none");
  EXPECT_EQ(render("{% for m in messages %}{{ loop.previtem.content if loop.previtem is defined else '-' }}{% endfor %}", g),
            "-SU1A1");
  // set inside a loop does not leak out; namespace attributes do.
  EXPECT_EQ(render("{% set x = 'out' %}{% set ns = namespace(n=0) %}{% for m in messages %}{% set x = 'in' %}"
                   "{% set ns.n = ns.n + 1 %}{% endfor %}{{ x }} {{ ns.n }}",
                   g),
            "out 4");
  EXPECT_EQ(render("{% for m in messages %}{% if loop.first %}{% set x = 'set' %}{% endif %}{{ x | default('-') }}{% endfor %}", g),
            "set---");  // a fresh scope per iteration, as in Jinja
  EXPECT_EQ(render("{% set s %}[{{ messages | length }}]{% endset %}{{ s }}{{ s }}", g), "[4][4]");
  EXPECT_EQ(render("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}"), "a=1;b=2;");
  EXPECT_EQ(render("{{ messages[1:3] | map(attribute='content') | join('+') }} {{ messages | selectattr('role', 'equalto', 'user') | list | length }}", g),
            "U1+A1 2");
}

TEST(TokenizerChatTemplate, StringsAndMethods) {
  EXPECT_EQ(render("{{ '  x y  '.strip() }}|{{ 'abc'.upper() }}|{{ 'a,b'.split(',') | join(' ') }}|{{ 'hello world'.title() }}"),
            "x y|ABC|a b|Hello World");
  EXPECT_EQ(render("{{ 'abc'.startswith('ab') }} {{ 'abc'.endswith(('x', 'c')) }} {{ 'abc'.endswith('b') }}"), "True True False");
  EXPECT_EQ(render("{{ 'user' in ('user', 'system') }} {{ (1, 2) | length }}"), "True 2");
  EXPECT_EQ(render("{{ 'a\\nb\\t\\'q\\' \\u00e9 \\x41' }}"), "a\nb\t'q' é A");
  EXPECT_EQ(render("{{ 'ab' 'cd' }}{{ 'x' * 3 }}{{ 'héllo'[1] }}{{ 'héllo' | length }}{{ 'abc'[::-1] }}"), "abcdxxxé5cba");
  EXPECT_EQ(render("{{ {'a': 1}.get('b', 'dflt') }} {{ {'a': 1}['a'] }} {{ 'k' in {'k': 1} }}"), "dflt 1 True");
  EXPECT_EQ(render("{{ '%d' if false else 10 % 3 }} {{ -10 // 3 }} {{ -10 % 3 }}"), "1 -4 2");
}
