// Structured output: a JSON Schema (subset) compiled into a byte-level pushdown matcher, and a
// TokenConstraint that masks, at every step, the tokens whose bytes cannot continue a valid document.
//
// Supported: type (string, number, integer, boolean, null, object, array, or a list of them), properties
// (generated in schema order; optional ones may be skipped), required, additionalProperties (false;
// true/absent allow extra keys only for schema-less objects), items, minItems/maxItems, minLength/
// maxLength, enum, const, anyOf, nested schemas; annotations (title, description, default, examples,
// $schema, strict) are ignored. Anything else throws mcpm::Error naming the keyword and its path.
// Output is compact JSON (no whitespace outside strings); numbers have at most 15 integer and 15
// fraction digits and an exponent of at most 2 digits (always a finite double).
//
// The mask is a walk over a byte trie of the vocabulary (TokenTrie, built once per tokenizer),
// pruned at the first byte the matcher refuses. Inside a plain string (the expensive case: nearly
// every token fits) the tokens made only of ordinary string characters are taken from a list
// bucketed by length and only the other tokens are walked.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/json.h"
#include "runtime/scheduler.h"
#include "runtime/token_bytes.h"

namespace mcpm {

class JsonGrammar;

// The vocabulary as a byte trie (special tokens excluded), plus the plain-string token list.
class TokenTrie {
 public:
  explicit TokenTrie(const TokenBytes& bytes);
  struct Node {
    uint32_t first_child = 0, n_children = 0;  // children are nodes [first_child, first_child + n)
    uint32_t first_token = 0, n_tokens = 0;    // ids ending here: tokens_[first_token ..)
    uint8_t byte = 0;
  };
  const std::vector<Node>& nodes() const { return nodes_; }
  const std::vector<int32_t>& tokens() const { return tokens_; }
  // Trie of the tokens that are NOT plain string content (same layout).
  const TokenTrie* special_in_string() const { return in_string_.get(); }
  // Plain-string tokens sorted by their character count; plain_by_len_[k] = first index with > k chars.
  const std::vector<int32_t>& plain_tokens() const { return plain_; }
  const std::vector<uint32_t>& plain_chars() const { return plain_chars_; }
  int64_t vocab_size() const { return vocab_; }
  const TokenBytes& bytes() const { return *bytes_; }

 private:
  TokenTrie() = default;
  void build(const std::vector<std::pair<std::string, int32_t>>& entries);
  const TokenBytes* bytes_ = nullptr;
  int64_t vocab_ = 0;
  std::vector<Node> nodes_;
  std::vector<int32_t> tokens_;
  std::unique_ptr<TokenTrie> in_string_;
  std::vector<int32_t> plain_;
  std::vector<uint32_t> plain_chars_;
};

// Compiles a schema given as JSON text (properties are generated in the order they are written);
// throws mcpm::Error "unsupported ... at <path>" / "invalid ... at <path>".
std::shared_ptr<const JsonGrammar> compile_json_schema_text(const std::string& schema);
// Same from a parsed value (nlohmann::json sorts keys: properties come in alphabetical order).
std::shared_ptr<const JsonGrammar> compile_json_schema(const json& schema);
// One python-style call of one of the tools: name(k=<json>,k2=<json>) with the keys and values of
// each tool's parameters schema (JSON text; "" = no parameters). Forced tool calls use it.
std::shared_ptr<const JsonGrammar> compile_tool_call_grammar(const std::vector<std::pair<std::string, std::string>>& tools);
// Any JSON object (response_format json_object).
std::shared_ptr<const JsonGrammar> json_object_grammar();

// Matcher state over bytes (exposed for tests): feed bytes, ask whether a document is complete.
class JsonMatcher {
 public:
  explicit JsonMatcher(std::shared_ptr<const JsonGrammar> g);
  ~JsonMatcher();
  JsonMatcher(const JsonMatcher&);
  JsonMatcher& operator=(const JsonMatcher&);
  bool feed(const std::string& bytes);  // false (and state unchanged) when the bytes are refused
  bool can_end() const;                 // the bytes so far are a complete document
  bool finished() const;                // complete and nothing more may follow
  struct State;
  State& state() { return *s_; }

 private:
  std::shared_ptr<const JsonGrammar> g_;
  std::unique_ptr<State> s_;
};

class JsonConstraint : public TokenConstraint {
 public:
  JsonConstraint(std::shared_ptr<const JsonGrammar> g, std::shared_ptr<const TokenTrie> trie, std::vector<int32_t> eos_ids);
  void mask(float* logits, int64_t V) override;
  void accept(int32_t token) override;
  bool complete() const override { return m_.finished(); }
  // Allowed ids for the current state (what mask() keeps); exposed for tests and benchmarks.
  void allowed(std::vector<char>& out);

 private:
  std::shared_ptr<const JsonGrammar> g_;
  std::shared_ptr<const TokenTrie> trie_;
  std::vector<int32_t> eos_;
  JsonMatcher m_;
  std::vector<char> allowed_;
};

}  // namespace mcpm
