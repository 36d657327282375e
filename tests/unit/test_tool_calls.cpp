// MiniCPM tool calls (server/tool_calls.h): the python-call parser on golden strings, the reply
// splitter, the streaming filter (markers never reach content, however the text is chunked), and the
// prompt / history rendering.
#include <gtest/gtest.h>

#include "common/test_util.h"
#include "server/tool_calls.h"

namespace mcpm::server {
namespace {

std::vector<ToolSpec> tools() {
  ToolSpec w;
  w.name = "get_weather";
  w.description = "Weather for a city.";
  w.parameters = json::parse(R"({"type":"object","properties":{"location":{"type":"string","description":"City"},
                                 "unit":{"enum":["c","f"]}},"required":["location"]})");
  w.params = {"location", "unit"};
  ToolSpec s;
  s.name = "search";
  s.parameters = json::parse(R"({"type":"object","properties":{"query":{"type":"string"},"filters":{"type":"object"}}})");
  s.params = {"query", "filters"};
  ToolSpec k;
  k.name = "define";
  k.params = {"class", "lambda"};
  return {w, s, k};
}

json args(const std::string& text, size_t i = 0) {
  auto calls = parse_python_calls(text, tools());
  EXPECT_TRUE(calls.has_value()) << text;
  if (!calls || calls->size() <= i) return nullptr;
  return (*calls)[i].arguments;
}

TEST(ToolCallParser, GoldenStrings) {
  EXPECT_EQ(args(R"(get_weather(location="Paris", unit='c'))"), json({{"location", "Paris"}, {"unit", "c"}}));
  EXPECT_EQ(args("```python\nget_weather(location=\"Paris\")\n```"), json({{"location", "Paris"}}));
  // Nested lists / dicts, True/False/None, numbers, escapes, tuples.
  EXPECT_EQ(args(R"(search(query="a\"b\n\u00e9", filters={"k": [1, -2.5, True, None, {"x": False}], 3: (1, 2)}))"),
            json::parse(R"({"query":"a\"b\né","filters":{"k":[1,-2.5,true,null,{"x":false}],"3":[1,2]}})"));
  EXPECT_EQ(args(R"(search(query='''multi
line''', filters={}))"), json::parse(R"({"query":"multi\nline","filters":{}})"));
  EXPECT_EQ(args("search(query=1e3, filters={'n': 1_000})"), json::parse(R"({"query":1000.0,"filters":{"n":1000}})"));
  // JSON literals as the chat template writes earlier calls.
  EXPECT_EQ(args(R"(search(query="x",filters={"a":true,"b":null}))"), json::parse(R"({"query":"x","filters":{"a":true,"b":null}})"));
  // Python keywords as argument names, positional arguments by declaration order.
  EXPECT_EQ(args(R"(define(class="A", lambda=2))"), json({{"class", "A"}, {"lambda", 2}}));
  EXPECT_EQ(args(R"(get_weather("Rome", "f"))"), json({{"location", "Rome"}, {"unit", "f"}}));
  // Two calls (newline or ';').
  auto two = parse_python_calls("get_weather(location=\"A\")\nsearch(query=\"b\")", tools());
  ASSERT_TRUE(two && two->size() == 2);
  EXPECT_EQ((*two)[0].name, "get_weather");
  EXPECT_EQ((*two)[1].name, "search");
  EXPECT_EQ((*two)[1].arguments, json({{"query", "b"}}));
  auto semi = parse_python_calls("get_weather(location=\"A\"); get_weather(location=\"B\")", tools());
  ASSERT_TRUE(semi && semi->size() == 2);
  // Broken input: nothing half-parsed.
  for (const char* bad : {"get_weather(location=\"Paris\"", "get_weather location=1", "unknown_tool(a=1)",
                          "get_weather(location=\"x\") trailing", "get_weather(location=foo)", "get_weather(=1)",
                          "get_weather(location=\"x\",,)", "get_weather(location='unterminated)", "", "```python\n```",
                          "get_weather(\"a\", \"b\", \"c\")", "search(query={1: [}})"})
    EXPECT_FALSE(parse_python_calls(bad, tools()).has_value()) << bad;
}

TEST(ToolCallParser, DeepNestingIsRefusedNotACrash) {
  std::string deep = "search(query=" + std::string(100000, '[') + std::string(100000, ']') + ")";
  EXPECT_FALSE(parse_python_calls(deep, tools()).has_value());
}

const std::string kReply =
    "<|thought_start|>\nI need the weather.\n<|thought_end|>\n<|tool_call_start|>\n```python\n"
    "get_weather(location=\"Paris\", unit=\"c\")\nsearch(query=\"umbrella\")\n```\n<|tool_call_end|>\nChecking now.";

TEST(ToolReply, SplitsContentAndCalls) {
  const ParsedReply r = parse_reply(kReply, tools());
  EXPECT_EQ(r.content, "Checking now.");
  ASSERT_EQ(r.calls.size(), 2u);
  EXPECT_EQ(r.calls[0].arguments, json({{"location", "Paris"}, {"unit", "c"}}));
  // Malformed call: the raw text stays as content (nothing lost, no exception).
  const std::string broken = "Hi <|tool_call_start|>get_weather(location=<|tool_call_end|> bye";
  const ParsedReply b = parse_reply(broken, tools());
  EXPECT_TRUE(b.calls.empty());
  EXPECT_EQ(b.content, broken);
  // No markers: content unchanged.
  EXPECT_EQ(parse_reply("plain <| text", tools()).content, "plain <| text");
  // Unterminated call block at the end (e.g. a forced call) is parsed.
  const ParsedReply u = parse_reply("<|tool_call_start|>\n```python\nget_weather(location=\"X\")", tools());
  ASSERT_EQ(u.calls.size(), 1u);
  EXPECT_EQ(u.content, "");
}

TEST(ToolReply, StreamingNeverLeaksMarkersWhateverTheChunking) {
  const ParsedReply whole = parse_reply(kReply, tools());
  const std::vector<ToolSpec> ts = tools();  // the filter keeps a pointer to it
  for (size_t chunk : {size_t(1), size_t(2), size_t(3), size_t(7), size_t(19)}) {
    ToolStreamFilter f(ts);
    std::vector<ToolCall> calls;
    std::string content;
    for (size_t i = 0; i < kReply.size(); i += chunk) {
      const std::string piece = f.push(kReply.substr(i, chunk), calls);
      EXPECT_EQ(piece.find("<|"), std::string::npos) << "chunk " << chunk << ": '" << piece << "'";
      content += piece;
    }
    content += f.finish(calls);
    EXPECT_EQ(content, whole.content);
    ASSERT_EQ(calls.size(), whole.calls.size());
    for (size_t k = 0; k < calls.size(); ++k) EXPECT_EQ(calls[k].arguments, whole.calls[k].arguments);
  }
}

TEST(ToolPrompt, RendersStubsAndHistory) {
  const std::string p = render_tools_prompt(tools());
  EXPECT_NE(p.find("\n# Functions\n"), std::string::npos);
  EXPECT_NE(p.find("def get_weather(location, unit=None):\n    \"\"\"Weather for a city.\n\n    Args:\n"), std::string::npos) << p;
  EXPECT_NE(p.find("        location: str = Field(..., description=\"City\")\n"), std::string::npos) << p;
  EXPECT_NE(p.find("class Unit(Enum):\n    enum_0 = \"c\"\n    enum_1 = \"f\"\n"), std::string::npos) << p;
  EXPECT_NE(p.find("<|tool_call_start|>\n```python\nfunc1("), std::string::npos);
  const std::string h = render_tool_calls({{"get_weather", json({{"location", "Paris"}, {"unit", "c"}})}});
  EXPECT_EQ(h, "<|tool_call_start|>\n```python\nget_weather(location=\"Paris\",unit=\"c\")\n```\n<|tool_call_end|>\n");
  // What we render for history parses back to the same call.
  const ParsedReply r = parse_reply(h, tools());
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].arguments, json({{"location", "Paris"}, {"unit", "c"}}));
}

}  // namespace
}  // namespace mcpm::server
