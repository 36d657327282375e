// Scheduler (runtime/scheduler.h): continuous batching on the bundled model
// (models/minicpm4-tiny-chat) with several KV slots.
// - greedy tokens of a request are the same alone, beside other requests (more than the slots, so
//   some queue), with its prefix from the cache, and as plain one-token decoding on its own model;
// - stop strings cut the text at their first byte, never leak, also across token boundaries;
// - max_tokens / context limits, cancel, queue limit, logprobs, logit_bias;
// - with a drafter (prompt lookup, the bundled EAGLE head), greedy and seeded sampled output is the
//   plain ticks' output, alone, beside others (drafting restarts on each slot) and from the cache.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "backend/backend.h"
#include "common/test_util.h"
#include "model/model.h"
#include "runtime/eagle_drafter.h"
#include "runtime/ngram_drafter.h"
#include "runtime/scheduler.h"
#include "tokenizer/tokenizer.h"

namespace mcpm {
namespace {

std::string bundled() { return test::source_dir() + "/models/minicpm4-tiny-chat"; }

struct Result {
  std::vector<int32_t> tokens;
  std::string text, streamed;
  FinishReason finish = FinishReason::Length;
  int64_t n_cached = -1, updates = 0;
  std::vector<TokenLogprob> logprobs;
  bool done = false;
};

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tok_ = Tokenizer::load(bundled());
    be_ = make_cpu_backend({2, true, 0});
    LoadOptions lo;
    lo.n_ctx = 128;
    lo.max_batch = 48;
    lo.n_seq = 3;
    model_ = Model::load(bundled(), *be_, lo);
    SchedulerOptions so;
    so.prefill_chunk = 11;  // prompts cross several chunks
    so.max_queue = 8;
    sched_ = std::make_unique<Scheduler>(*model_, *tok_, so);
  }
  std::vector<int32_t> chat(const std::string& user) {
    return tok_->encode_chat({{"user", user}}, true, true);
  }
  RequestOptions greedy(std::vector<int32_t> prompt, int64_t n) {
    RequestOptions o;
    o.prompt = std::move(prompt);
    o.max_tokens = n;
    o.sampling.temperature = 0.0f;
    return o;
  }
  // Submits every request, steps until all are done.
  std::vector<Result> run(std::vector<RequestOptions> reqs) {
    std::vector<Result> res(reqs.size());
    for (size_t i = 0; i < reqs.size(); ++i)
      sched_->submit(std::move(reqs[i]), [&res, i](RequestUpdate&& u) {
        Result& r = res[i];
        EXPECT_FALSE(r.done) << "update after done";
        ++r.updates;
        r.streamed += u.text;
        r.tokens.insert(r.tokens.end(), u.tokens.begin(), u.tokens.end());
        for (auto& l : u.logprobs) r.logprobs.push_back(l);
        if (u.done) r.done = true, r.finish = u.finish, r.n_cached = u.n_cached, r.text = r.streamed;
      });
    for (int guard = 0; guard < 10000 && sched_->step(); ++guard) {
    }
    for (auto& r : res) EXPECT_TRUE(r.done);
    return res;
  }
  std::unique_ptr<Tokenizer> tok_;
  std::unique_ptr<Backend> be_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Scheduler> sched_;
};

const std::vector<std::string> kPrompts = {
    "Hello! Who are you?", "Write a short poem about the sea and the wind over the harbour at night.",
    "What is 2 + 2?", "Tell me a story about a dragon.", "Translate to French: good morning, friends.",
};

TEST_F(SchedulerTest, GreedyAloneEqualsConcurrentAndPlainDecoding) {
  // Alone, one after the other.
  std::vector<Result> alone;
  for (const auto& p : kPrompts) alone.push_back(run({greedy(chat(p), 24)})[0]);
  // All at once: 5 requests on 3 slots (2 wait in the queue), different lengths and positions.
  std::vector<RequestOptions> all;
  for (const auto& p : kPrompts) all.push_back(greedy(chat(p), 24));
  const std::vector<Result> together = run(all);
  for (size_t i = 0; i < kPrompts.size(); ++i) {
    SCOPED_TRACE(kPrompts[i]);
    ASSERT_FALSE(alone[i].tokens.empty());
    EXPECT_EQ(alone[i].tokens, together[i].tokens);
    EXPECT_EQ(alone[i].text, together[i].text);
    EXPECT_EQ(alone[i].text, tok_->decode(alone[i].tokens));
  }
  // The same prompts again hit the prefix cache and give the same tokens.
  const std::vector<Result> again = run(all);
  for (size_t i = 0; i < kPrompts.size(); ++i) {
    EXPECT_EQ(again[i].tokens, alone[i].tokens);
    EXPECT_GT(again[i].n_cached, 0);
  }
  // Independent check: plain one-token forwards with argmax on a fresh one-slot model.
  auto be = make_cpu_backend({1, true, 0});
  LoadOptions lo;
  lo.n_ctx = 128;
  auto m = Model::load(bundled(), *be, lo);
  std::vector<int32_t> eos = m->spec().eos_ids;
  eos.push_back(tok_->eos_id());
  for (size_t i = 0; i < kPrompts.size(); ++i) {
    m->truncate(0);
    const std::vector<int32_t> p = chat(kPrompts[i]);
    std::vector<float> logits(size_t(m->spec().vocab_size));
    for (int32_t t : p) m->forward(&t, 1);
    std::vector<int32_t> out;
    for (int k = 0; k < 24; ++k) {
      m->logits(0, 1, logits.data());
      const int32_t t = argmax(logits.data(), m->spec().vocab_size);
      if (std::find(eos.begin(), eos.end(), t) != eos.end()) break;
      out.push_back(t);
      m->forward(&t, 1);
    }
    EXPECT_EQ(out, alone[i].tokens) << kPrompts[i];
  }
}

TEST_F(SchedulerTest, SharedPrefixCopiedFromABusySlot) {
  const std::string sys = "You are a helpful assistant who answers in full sentences and is always polite.";
  auto p1 = tok_->encode_chat({{"system", sys}, {"user", "Hi"}}, true, true);
  auto p2 = tok_->encode_chat({{"system", sys}, {"user", "Bye"}}, true, true);
  const Result solo = run({greedy(p2, 16)})[0];
  // Fill every slot with unrelated work so nothing of p1/p2 stays cached.
  run({greedy(chat("x"), 2), greedy(chat("y"), 2), greedy(chat("z"), 2)});
  // p1 runs; once its prompt is in (busy slot), p2 arrives and copies the shared prefix from it.
  Result a, b;
  auto sink = [](Result& r) {
    return [&r](RequestUpdate&& u) {
      r.tokens.insert(r.tokens.end(), u.tokens.begin(), u.tokens.end());
      if (u.done) r.done = true, r.n_cached = u.n_cached;
    };
  };
  sched_->submit(greedy(p1, 16), sink(a));
  while (a.tokens.empty() && !a.done) sched_->step();
  ASSERT_FALSE(a.done);
  sched_->submit(greedy(p2, 16), sink(b));
  while (sched_->step()) {
  }
  ASSERT_TRUE(a.done && b.done);
  EXPECT_LT(a.n_cached, 5);  // only <s><|im_start|> in common with the filler prompts
  EXPECT_GE(b.n_cached, 10);
  EXPECT_EQ(b.tokens, solo.tokens);
}

TEST_F(SchedulerTest, StopStringsAcrossTokensNeverLeak) {
  const Result base = run({greedy(chat(kPrompts[1]), 40)})[0];
  ASSERT_GT(base.text.size(), 12u);
  // Stops that start mid-token and span tokens, from several offsets of the greedy text.
  for (size_t off : {size_t(1), base.text.size() / 3, base.text.size() / 2}) {
    const std::string stop = base.text.substr(off, 5);
    RequestOptions o = greedy(chat(kPrompts[1]), 40);
    o.stop = {"\x01never", stop};
    const Result r = run({o})[0];
    const size_t first = base.text.find(stop);
    EXPECT_EQ(r.text, base.text.substr(0, first)) << "stop " << stop;
    EXPECT_EQ(r.finish, FinishReason::Stop);
    EXPECT_EQ(r.streamed.find(stop), std::string::npos);
  }
  // A stop that never occurs changes nothing.
  RequestOptions o = greedy(chat(kPrompts[1]), 40);
  o.stop = {"\x02\x03"};
  const Result r = run({o})[0];
  EXPECT_EQ(r.text, base.text);
  EXPECT_EQ(r.finish, base.finish);
}

TEST_F(SchedulerTest, LimitsCancelAndQueue) {
  const Result r = run({greedy(chat("Tell me a long story."), 3)})[0];
  EXPECT_LE(r.tokens.size(), 3u);
  if (r.tokens.size() == 3) {
    EXPECT_EQ(r.finish, FinishReason::Length);
  }
  // Context: a prompt of 120 tokens in a 128-token slot.
  std::vector<int32_t> longp = chat("go");
  while (longp.size() < 120) longp.insert(longp.end() - 3, 300);
  RequestOptions o = greedy(longp, 100);
  o.stop_on_eos = false;
  const Result c = run({o})[0];
  EXPECT_EQ(c.finish, FinishReason::Context);
  EXPECT_EQ(int64_t(longp.size() + c.tokens.size()), 129);  // the last sampled token needs no KV row
  // Cancel after one tick.
  bool done = false;
  FinishReason why = FinishReason::Length;
  RequestOptions q = greedy(chat("Tell me a long story."), 100);
  q.stop_on_eos = false;
  const uint64_t id = sched_->submit(q, [&](RequestUpdate&& u) {
    if (u.done) done = true, why = u.finish;
  });
  sched_->step();
  sched_->cancel(id);
  sched_->step();
  EXPECT_TRUE(done);
  EXPECT_EQ(why, FinishReason::Cancelled);
  // Queue: 3 slots + 8 waiting, then QueueFull.
  for (int i = 0; i < 11; ++i) sched_->submit(greedy(chat("a"), 1), [](RequestUpdate&&) {});
  EXPECT_THROW(sched_->submit(greedy(chat("a"), 1), [](RequestUpdate&&) {}), QueueFull);
  while (sched_->step()) {
  }
  EXPECT_EQ(sched_->stats().active, 0);
  EXPECT_THROW(sched_->submit(greedy(std::vector<int32_t>(128, 5), 1), [](RequestUpdate&&) {}), Error);
}

TEST_F(SchedulerTest, LogprobsAndLogitBias) {
  RequestOptions o = greedy(chat(kPrompts[3]), 8);
  o.top_logprobs = 5;
  const Result r = run({o})[0];
  ASSERT_EQ(r.logprobs.size(), r.tokens.size());
  for (size_t i = 0; i < r.logprobs.size(); ++i) {
    const TokenLogprob& l = r.logprobs[i];
    EXPECT_EQ(l.id, r.tokens[i]);
    EXPECT_LE(l.logprob, 0.0f);
    ASSERT_EQ(l.top.size(), 5u);
    EXPECT_EQ(l.top[0].first, l.id);  // greedy picks the top-1
    EXPECT_FLOAT_EQ(l.top[0].second, l.logprob);
    for (size_t k = 1; k < 5; ++k) EXPECT_LE(l.top[k].second, l.top[k - 1].second);
    double mass = 0;
    for (auto& [id, lp] : l.top) mass += std::exp(double(lp));
    EXPECT_LE(mass, 1.0 + 1e-5);
  }
  // Banning the first greedy token changes the first token.
  RequestOptions b = greedy(chat(kPrompts[3]), 4);
  b.logit_bias = {{r.tokens[0], -1e30f}};
  const Result rb = run({b})[0];
  ASSERT_FALSE(rb.tokens.empty());
  EXPECT_NE(rb.tokens[0], r.tokens[0]);
}

TEST_F(SchedulerTest, SeededSamplingIsReproducibleUnderLoad) {
  auto sampled = [&](uint64_t seed) {
    RequestOptions o = greedy(chat(kPrompts[0]), 16);
    o.sampling.temperature = 1.0f;
    o.sampling.seed = seed;
    return o;
  };
  const Result a = run({sampled(7)})[0];
  const std::vector<Result> b = run({greedy(chat("noise"), 16), sampled(7), sampled(8)});
  EXPECT_EQ(a.tokens, b[1].tokens);
  EXPECT_NE(b[1].tokens, b[2].tokens);
}

}  // namespace

namespace {
// Speculative ticks (SchedulerOptions::drafter) against plain ticks on the same model.
struct SpecRun {
  std::vector<std::vector<int32_t>> tokens;
  std::vector<std::string> text;
  SchedulerStats stats;
};
SpecRun run_all(Model& m, const Tokenizer& tok, Drafter* d, const std::vector<RequestOptions>& reqs, bool together) {
  SchedulerOptions so;
  so.prefill_chunk = 13;
  so.drafter = d;
  Scheduler sc(m, tok, so);
  SpecRun out;
  out.tokens.resize(reqs.size());
  out.text.resize(reqs.size());
  auto submit = [&](size_t i) {
    sc.submit(reqs[i], [&out, i](RequestUpdate&& u) {
      out.tokens[i].insert(out.tokens[i].end(), u.tokens.begin(), u.tokens.end());
      out.text[i] += u.text;
    });
  };
  for (size_t i = 0; i < reqs.size(); ++i) {
    submit(i);
    if (!together)
      while (sc.step()) {
      }
  }
  while (sc.step()) {
  }
  out.stats = sc.stats();
  return out;
}
}  // namespace

TEST(SchedulerSpec, SpeculativeTicksGiveThePlainTicksOutput) {
  auto tok = Tokenizer::load(bundled());
  auto be = make_cpu_backend({2, true, 0});
  LoadOptions lo;
  lo.n_ctx = 160;
  lo.max_batch = 64;
  lo.n_seq = 3;
  auto model = Model::load(bundled(), *be, lo);
  LoadOptions dl = lo;
  dl.n_ctx = lo.n_ctx + DraftTree::kMaxNodes;
  dl.n_seq = 1;
  dl.draft_of = model.get();
  auto draft = Model::load(bundled() + "/eagle", *be, dl);
  EagleDrafter eagle(*model, *draft);
  NgramDrafter ngram;

  std::vector<RequestOptions> reqs;
  for (size_t i = 0; i < kPrompts.size(); ++i) {
    RequestOptions o;
    o.prompt = tok->encode_chat({{"user", kPrompts[i]}}, true, true);
    o.max_tokens = 40;
    o.sampling.temperature = i == 1 ? 0.8f : 0.0f;  // one seeded sampled request
    o.sampling.seed = 7;
    reqs.push_back(o);
  }
  reqs.push_back(reqs[0]);  // the first again: its prefix comes from the cache
  const SpecRun plain = run_all(*model, *tok, nullptr, reqs, false);
  for (const auto& t : plain.tokens) ASSERT_FALSE(t.empty());
  for (Drafter* d : std::initializer_list<Drafter*>{&ngram, &eagle}) {
    for (bool together : {false, true}) {
      SCOPED_TRACE(std::string(d->name()) + (together ? " together" : " alone"));
      const SpecRun r = run_all(*model, *tok, d, reqs, together);
      EXPECT_EQ(r.tokens, plain.tokens);
      EXPECT_EQ(r.text, plain.text);
      EXPECT_GT(r.stats.spec_steps, 0u);
      EXPECT_EQ(r.stats.generated_tokens, plain.stats.generated_tokens);
      if (!together && d == &eagle) EXPECT_GT(r.stats.spec_tokens, r.stats.spec_steps);  // drafts were accepted
    }
  }
}

}  // namespace mcpm
