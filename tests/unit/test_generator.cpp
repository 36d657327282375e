// Generation loop: stop strings (never leaked into the stream), eos ids, max tokens, the context
// limit, and KV-cache prefix reuse across calls. Uses the real MiniCPM4 tokenizer from ../shared
// with a random-weight model of the real vocabulary size.
#include <gtest/gtest.h>

#include "common/test_util.h"
#include "model/random_checkpoint.h"
#include "runtime/generator.h"
#include "tokenizer/tokenizer.h"

using namespace mcpm;

TEST(Generator, StopPrefixHoldback) {
  EXPECT_EQ(stop_prefix_holdback("hello wor", {"world"}), 3u);
  EXPECT_EQ(stop_prefix_holdback("hello", {"world"}), 0u);
  EXPECT_EQ(stop_prefix_holdback("abcab", {"abcd", "bx"}), 2u);
  EXPECT_EQ(stop_prefix_holdback("x\n\nUs", {"\n\nUser:"}), 4u);
}

class GeneratorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (test::shared_dir().empty()) GTEST_SKIP() << "../shared (real tokenizer) is not present";
    static std::string dir;
    if (dir.empty()) {
      dir = test::temp_dir("model");
      RandomCheckpointOptions o;
      o.spec = make_spec(64, 2, 4, 2, 96, 73448);
      o.spec.eos_ids = {2, 73440};
      o.init_std = 0.5;  // peaky logits: a random model that does not just emit noise uniformly
      o.tokenizer_dir = test::shared_dir() + "/minicpm4";
      write_random_checkpoint(o, dir);
    }
    tok_ = Tokenizer::load(dir);
    be_ = make_cpu_backend({1, false, 0});
    model_ = Model::load(dir, *be_, LoadOptions{96, 16, 4, DType::F32});
  }
  GenerateOptions greedy(int64_t n) {
    GenerateOptions o;
    o.max_tokens = n;
    o.sampling.temperature = 0.0f;
    return o;
  }
  std::unique_ptr<Tokenizer> tok_;
  std::unique_ptr<Backend> be_;
  std::unique_ptr<Model> model_;
};

TEST_F(GeneratorTest, StopStringCutsTextAndStream) {
  Generator gen(*model_, tok_.get());
  const auto prompt = tok_->encode("Once upon a time", true);
  const GenerateResult full = gen.generate(prompt, greedy(30));
  ASSERT_EQ(full.finish, FinishReason::Length);
  ASSERT_GE(full.text.size(), 12u) << full.text;
  // A stop string taken from the middle of the greedy continuation.
  const std::string stop = full.text.substr(full.text.size() / 2, 3);
  const size_t at = full.text.find(stop);
  GenerateOptions o = greedy(30);
  o.stop_strings = {stop, "this string never appears \x01"};
  std::string streamed;
  const GenerateResult r = gen.generate(prompt, o, [&](std::string_view s) {
    streamed += s;
    return true;
  });
  EXPECT_EQ(r.finish, FinishReason::Stop);
  EXPECT_EQ(r.text, full.text.substr(0, at));
  EXPECT_EQ(streamed, r.text);
  EXPECT_EQ(r.n_prompt_evaluated, 1);  // the whole prompt but its last token came from the cache
}

TEST_F(GeneratorTest, EosAndLengthAndContext) {
  Generator gen(*model_, tok_.get());
  const auto prompt = tok_->encode("The king said", true);
  const GenerateResult full = gen.generate(prompt, greedy(8));
  ASSERT_EQ(full.tokens.size(), 8u);
  GenerateOptions o = greedy(8);
  o.extra_eos_ids = {full.tokens[3]};
  const auto first = std::find(full.tokens.begin(), full.tokens.end(), full.tokens[3]) - full.tokens.begin();
  const GenerateResult r = gen.generate(prompt, o);
  EXPECT_EQ(r.finish, FinishReason::Eos);
  EXPECT_EQ(int64_t(r.tokens.size()), first);
  // Context limit: 96 positions.
  const GenerateResult c = gen.generate(prompt, greedy(500));
  EXPECT_EQ(c.finish, FinishReason::Context);
  EXPECT_EQ(int64_t(prompt.size() + c.tokens.size()), model_->n_ctx() + 1);
  std::vector<int32_t> too_long(200, 5);
  MCPM_EXPECT_ERROR(gen.generate(too_long, greedy(1)), "prompt is 200 tokens", "--ctx");
}

TEST_F(GeneratorTest, PrefixReuseGivesTheSameTokensAsAFreshRun) {
  const auto p1 = tok_->encode("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", true);
  Generator gen(*model_, tok_.get());
  const GenerateResult a = gen.generate(p1, greedy(6));
  auto p2 = p1;
  p2.insert(p2.end(), a.tokens.begin(), a.tokens.end());
  for (int32_t t : tok_->encode("<|im_end|>\n<|im_start|>user\nmore<|im_end|>\n<|im_start|>assistant\n", false)) p2.push_back(t);
  const GenerateResult b = gen.generate(p2, greedy(6));
  EXPECT_LT(b.n_prompt_evaluated, int64_t(p2.size()) - int64_t(p1.size()) + 2);
  Generator fresh(*model_, tok_.get());
  fresh.reset();
  const GenerateResult c = fresh.generate(p2, greedy(6));
  EXPECT_EQ(c.n_prompt_evaluated, int64_t(p2.size()));
  EXPECT_EQ(b.tokens, c.tokens);
}
