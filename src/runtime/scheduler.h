// Scheduler: continuous batching of many generation requests on one Model with n_seq KV slots.
//
// Each tick (step()) is ONE Model::forward(const Batch&) over the next decode token of every active
// request plus prefill chunks of requests still reading their prompt (model/batch.h: one run per
// slot), then one logits_rows() call for the rows that sample. New requests join between ticks,
// finished or cancelled ones leave; beyond the free slots requests wait in a bounded queue.
//
// Prefix reuse: a request takes the free slot whose cached tokens share the longest prefix with
// its prompt, or copies that prefix from any slot that holds a longer one (Model::copy_seq), and
// runs only the rest (n_cached in the updates).
//
// Determinism: with SchedulerOptions::row_invariant (default) every batch is row-invariant, so a
// request's tokens are bit for bit the same whatever else runs beside it, however its prompt was
// chunked and whether its prefix came from the cache (greedy output alone == under load).
//
// Speculative decoding (SchedulerOptions::drafter): while one request is decoding alone, each tick
// is a SpecDecoder step on its slot (draft tree, one verify forward, accepted path), with the same
// output as plain ticks (the verify batch is row-invariant; sampled picks are the same draws). When
// others join, ticks are plain batched steps again (a batch already reads the weights once for
// all); the drafter restarts on a slot from the tokens and target hidden states the slot keeps.
//
// Server-independent: updates go to a per-request callback (called on the thread running step()).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "model/model.h"
#include "runtime/generator.h"
#include "runtime/sampler.h"
#include "runtime/speculative.h"
#include "runtime/token_bytes.h"

namespace mcpm {

class Tokenizer;

// A per-step restriction of the next token (structured output). mask() sets disallowed logits to
// -inf; accept() advances the state with the chosen token; complete() = the output is finished
// (the request then ends with FinishReason::Stop).
class TokenConstraint {
 public:
  virtual ~TokenConstraint() = default;
  virtual void mask(float* logits, int64_t V) = 0;
  virtual void accept(int32_t token) = 0;
  virtual bool complete() const = 0;
};

struct RequestOptions {
  std::vector<int32_t> prompt;  // non-empty, shorter than the context
  int64_t max_tokens = 256;     // >= 1; generation also ends when the slot's context is full (Context)
  SamplerParams sampling;
  std::vector<std::string> stop;  // stop strings (bytes, across token boundaries; never in the text)
  std::vector<std::pair<int32_t, float>> logit_bias;  // added to the logits before sampling
  int top_logprobs = -1;  // -1: no logprobs; else alternatives per token (0..20)
  bool stop_on_eos = true;
  std::shared_ptr<TokenConstraint> constraint;
};

struct TokenLogprob {
  int32_t id = 0;
  float logprob = 0;                            // log-softmax of the (biased, masked) logits
  std::vector<std::pair<int32_t, float>> top;   // best alternatives, descending
};

struct RequestUpdate {
  std::string text;                   // newly final text (complete UTF-8, no stop-string prefix)
  std::vector<TokenLogprob> logprobs;  // tokens sampled since the previous update (if requested)
  std::vector<int32_t> tokens;        // ids sampled since the previous update
  bool done = false;
  FinishReason finish = FinishReason::Length;  // when done
  std::string error;                  // when done with an engine error
  int64_t n_prompt = 0, n_cached = 0, n_generated = 0;
};
using UpdateSink = std::function<void(RequestUpdate&&)>;

struct SchedulerOptions {
  int64_t max_queue = 64;     // waiting requests beyond the slots; submit() throws QueueFull beyond
  bool row_invariant = true;  // deterministic batches (see above)
  int64_t prefill_chunk = 0;  // most prompt tokens per slot per tick; 0 = the model's max_batch
  Drafter* drafter = nullptr; // speculative decoding of a request decoding alone (null: off)
  SpecLimits spec;            // its tree limits (0 = automatic)
};

struct SchedulerStats {
  int64_t slots = 0, active = 0, queued = 0;
  uint64_t requests = 0, prompt_tokens = 0, cached_tokens = 0, generated_tokens = 0, steps = 0;
  uint64_t spec_steps = 0, spec_tokens = 0;  // speculative ticks and the tokens they emitted
  double ttft_seconds_sum = 0;  // submit -> first token, summed over requests that produced one
  uint64_t ttft_count = 0;
  double busy_seconds = 0;      // time spent in forward + sampling
};

struct QueueFull : std::runtime_error {
  QueueFull() : std::runtime_error("the request queue is full") {}
};

class Scheduler {
 public:
  Scheduler(Model& model, const Tokenizer& tokenizer, const SchedulerOptions& options = {});
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a request (thread-safe); returns its id. Throws QueueFull (also after stop()), or mcpm::Error for a request
  // the model cannot run (empty prompt, prompt >= context, bad token id).
  uint64_t submit(RequestOptions options, UpdateSink sink);
  // Ends a request at the next tick (FinishReason::Cancelled); unknown ids are ignored.
  void cancel(uint64_t id);
  // One tick: admit waiting requests, one forward over all active slots, sample. Returns false when
  // there was nothing to do. Call from one thread only (or use start()).
  bool step();
  // Runs step() on a worker thread until stop(); stop() cancels everything still running.
  void start();
  void stop();
  SchedulerStats stats() const;
  int64_t n_slots() const { return int64_t(slots_.size()); }
  const TokenBytes& token_bytes() const { return bytes_; }

 private:
  struct Request;
  struct Slot {
    std::vector<int32_t> tokens;  // ids whose K/V are in this slot
    std::vector<float> hidden;    // [tokens, H] target hidden states (kept only for a drafter that needs them)
    Request* req = nullptr;
    uint64_t last_used = 0;
  };
  void admit(std::unique_ptr<Request> r);
  int32_t sample_row(Request& r, float* logits);  // the token drawn (also when it ends the request)
  bool spec_tick(Request& r);                     // one speculative step of a request decoding alone
  void emit_text(Request& r, std::string piece, bool final);
  void finish(Request& r, FinishReason why, const std::string& error = {});
  void worker();

  Model& model_;
  const Tokenizer& tok_;
  SchedulerOptions opt_;
  TokenBytes bytes_;
  std::vector<int32_t> eos_;
  std::vector<Slot> slots_;
  std::vector<std::unique_ptr<Request>> active_;
  std::vector<float> logits_;
  uint64_t tick_ = 0;
  std::unique_ptr<SpecDecoder> spec_;
  uint64_t spec_owner_ = 0;  // the request the drafter is in step with, at spec_synced_ cached tokens
  size_t spec_synced_ = 0;
  std::vector<float> pick_buf_;

  mutable std::mutex mu_;  // guards queue_, cancelled_, next_id_, stats_, stop_
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Request>> queue_;
  std::unordered_set<uint64_t> cancelled_;
  uint64_t next_id_ = 1;
  SchedulerStats stats_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace mcpm
