#include "runtime/scheduler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/log.h"
#include "core/timer.h"
#include "tokenizer/tokenizer.h"

namespace mcpm {

struct Scheduler::Request {
  uint64_t id = 0;
  RequestOptions o;
  UpdateSink sink;
  Sampler sampler;
  StreamingDecoder dec;
  int slot = -1;
  int64_t fed = 0;       // prompt tokens in the slot's KV
  int64_t n_cached = 0;  // of which came from the prefix cache
  int32_t next = -1;     // sampled token still to be fed (decode)
  std::vector<int32_t> generated;
  std::string pending;   // decoded text held back (could start a stop string)
  RequestUpdate out;     // accumulates until the next delivery
  double t_submit = 0;
  bool first = true;
  bool finished = false;
  bool stopped_by_string = false;
  Request(RequestOptions opts, UpdateSink s, const Tokenizer& tok)
      : o(std::move(opts)), sink(std::move(s)), sampler(o.sampling), dec(tok) {}
};

Scheduler::Scheduler(Model& model, const Tokenizer& tokenizer, const SchedulerOptions& options)
    : model_(model), tok_(tokenizer), opt_(options) {
  bytes_ = TokenBytes::build(tokenizer, model.spec().vocab_size);
  eos_ = model.spec().eos_ids;
  if (tokenizer.eos_id() >= 0) eos_.push_back(tokenizer.eos_id());
  slots_.resize(size_t(model.n_seq()));
  for (int s = 0; s < int(slots_.size()); ++s) model_.truncate(s, 0);
  if (opt_.prefill_chunk <= 0) opt_.prefill_chunk = model.options().max_batch;
  stats_.slots = int64_t(slots_.size());
  if (opt_.drafter) {
    MCPM_CHECK(opt_.row_invariant, "speculative decoding in the scheduler needs row-invariant batches (its output must "
               "match plain ticks)");
    spec_ = std::make_unique<SpecDecoder>(model, *opt_.drafter, opt_.spec);
  }
}

Scheduler::~Scheduler() { stop(); }

uint64_t Scheduler::submit(RequestOptions o, UpdateSink sink) {
  MCPM_CHECK(!o.prompt.empty(), "the prompt is empty (nothing to condition on)");
  MCPM_CHECK(int64_t(o.prompt.size()) < model_.n_ctx(), "the prompt is {} tokens but the context holds {}",
             o.prompt.size(), model_.n_ctx());
  MCPM_CHECK(o.max_tokens >= 1, "max_tokens must be >= 1 (got {})", o.max_tokens);
  const int64_t V = model_.spec().vocab_size;
  for (int32_t t : o.prompt) MCPM_CHECK(t >= 0 && t < V, "prompt token {} is outside the vocabulary [0, {})", t, V);
  for (const auto& [t, b] : o.logit_bias) MCPM_CHECK(t >= 0 && t < V, "logit_bias token {} is outside [0, {})", t, V);
  auto r = std::make_unique<Request>(std::move(o), std::move(sink), tok_);
  r->t_submit = now_seconds();
  std::lock_guard<std::mutex> lock(mu_);
  if (stop_) throw QueueFull();  // shutting down: nothing would run it
  if (int64_t(queue_.size()) >= opt_.max_queue + std::max<int64_t>(0, int64_t(slots_.size()) - stats_.active))
    throw QueueFull();
  r->id = next_id_++;
  const uint64_t id = r->id;
  queue_.push_back(std::move(r));
  stats_.queued = int64_t(queue_.size());
  cv_.notify_all();
  return id;
}

void Scheduler::cancel(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  cancelled_.insert(id);
  cv_.notify_all();
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

namespace {
size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}
}  // namespace

void Scheduler::admit(std::unique_ptr<Request> r) {
  const std::vector<int32_t>& p = r->o.prompt;
  // The free slot with the longest common prefix (ties: least recently used), and the best prefix
  // held anywhere; always re-run at least the last prompt token (its logits are needed).
  int best_free = -1;
  size_t best_free_n = 0, best_any_n = 0;
  int best_any = -1;
  for (int s = 0; s < int(slots_.size()); ++s) {
    const size_t n = std::min(common_prefix(slots_[size_t(s)].tokens, p), p.size() - 1);
    if (!slots_[size_t(s)].req &&
        (best_free < 0 || n > best_free_n ||
         (n == best_free_n && slots_[size_t(s)].last_used < slots_[size_t(best_free)].last_used)))
      best_free = s, best_free_n = n;
    if (n > best_any_n) best_any = s, best_any_n = n;
  }
  MCPM_ASSERT(best_free >= 0);
  Slot& slot = slots_[size_t(best_free)];
  size_t common = best_free_n;
  const bool keep_hidden = opt_.drafter && opt_.drafter->needs_hidden();
  const size_t H = size_t(model_.spec().hidden);
  if (best_any >= 0 && best_any_n > best_free_n) {
    model_.copy_seq(best_any, best_free, int64_t(best_any_n));
    const Slot& from = slots_[size_t(best_any)];
    slot.tokens.assign(from.tokens.begin(), from.tokens.begin() + int64_t(best_any_n));
    if (keep_hidden) slot.hidden.assign(from.hidden.begin(), from.hidden.begin() + int64_t(best_any_n * H));
    common = best_any_n;
  } else {
    model_.truncate(best_free, int64_t(common));
    slot.tokens.resize(common);
    if (keep_hidden) slot.hidden.resize(common * H);
  }
  r->slot = best_free;
  r->fed = int64_t(common);
  r->n_cached = int64_t(common);
  for (int32_t t : p) r->sampler.accept(t);
  model_.set_prefill_end(best_free, int64_t(p.size()));
  slot.req = r.get();
  slot.last_used = ++tick_;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.requests;
    stats_.prompt_tokens += p.size();
    stats_.cached_tokens += common;
  }
  active_.push_back(std::move(r));
}

void Scheduler::emit_text(Request& r, std::string piece, bool final) {
  r.pending += piece;
  const auto& stops = r.o.stop;
  size_t cut = std::string::npos;
  for (const auto& s : stops)
    if (!s.empty()) cut = std::min(cut, r.pending.find(s));
  if (cut != std::string::npos) {
    r.out.text += r.pending.substr(0, cut);
    r.pending.clear();
    r.stopped_by_string = true;
    finish(r, FinishReason::Stop);
    return;
  }
  const size_t hold = final ? 0 : stop_prefix_holdback(r.pending, stops);
  if (r.pending.size() > hold) {
    r.out.text += r.pending.substr(0, r.pending.size() - hold);
    r.pending.erase(0, r.pending.size() - hold);
  }
}

void Scheduler::finish(Request& r, FinishReason why, const std::string& error) {
  if (r.finished) return;
  r.finished = true;
  if (!r.stopped_by_string && why != FinishReason::Cancelled && error.empty()) {
    // Flush the decoder; the flushed tail can still complete a stop string.
    std::string tail = r.dec.flush();
    r.pending += tail;
    size_t cut = std::string::npos;
    for (const auto& s : r.o.stop)
      if (!s.empty()) cut = std::min(cut, r.pending.find(s));
    if (cut != std::string::npos) r.pending.resize(cut), why = FinishReason::Stop;
    r.out.text += r.pending;
    r.pending.clear();
  }
  r.out.done = true;
  r.out.finish = why;
  r.out.error = error;
}

int32_t Scheduler::sample_row(Request& r, float* l) {
  const int64_t V = model_.spec().vocab_size;
  for (const auto& [t, b] : r.o.logit_bias) l[t] += b;
  if (r.o.constraint) r.o.constraint->mask(l, V);
  TokenLogprob lp;
  double lse = 0;
  std::vector<float> orig;
  if (r.o.top_logprobs >= 0) {
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < V; ++i) mx = std::max(mx, l[i]);
    double z = 0;
    for (int64_t i = 0; i < V; ++i) z += std::exp(double(l[i]) - double(mx));
    lse = double(mx) + std::log(z);
    orig.assign(l, l + V);
    if (r.o.top_logprobs > 0) {
      std::vector<int32_t> ids(static_cast<size_t>(V));
      for (int64_t i = 0; i < V; ++i) ids[size_t(i)] = int32_t(i);
      const int64_t k = std::min<int64_t>(r.o.top_logprobs, V);
      std::partial_sort(ids.begin(), ids.begin() + k, ids.end(),
                        [&](int32_t a, int32_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); });
      for (int64_t i = 0; i < k; ++i) lp.top.emplace_back(ids[size_t(i)], float(double(l[ids[size_t(i)]]) - lse));
    }
  }
  const int32_t tok = r.sampler.sample(l, V);
  if (r.first) {
    r.first = false;
    std::lock_guard<std::mutex> lock(mu_);
    stats_.ttft_seconds_sum += now_seconds() - r.t_submit;
    ++stats_.ttft_count;
  }
  const bool is_eos = std::find(eos_.begin(), eos_.end(), tok) != eos_.end();
  if (r.o.stop_on_eos && is_eos) {  // a constraint allows eos only at a complete document
    finish(r, FinishReason::Eos);
    return tok;
  }
  r.generated.push_back(tok);
  r.out.tokens.push_back(tok);
  if (r.o.top_logprobs >= 0) {
    lp.id = tok;
    lp.logprob = float(double(orig[size_t(tok)]) - lse);
    r.out.logprobs.push_back(std::move(lp));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.generated_tokens;
  }
  r.sampler.accept(tok);
  if (r.o.constraint) r.o.constraint->accept(tok);
  emit_text(r, r.dec.push(tok), false);
  if (r.finished) return tok;
  if (r.o.constraint && r.o.constraint->complete()) finish(r, FinishReason::Stop);
  else if (int64_t(r.generated.size()) >= r.o.max_tokens) finish(r, FinishReason::Length);
  else if (int64_t(slots_[size_t(r.slot)].tokens.size()) >= model_.n_ctx()) finish(r, FinishReason::Context);
  else r.next = tok;
  return tok;
}

bool Scheduler::spec_tick(Request& r) {
  Slot& s = slots_[size_t(r.slot)];
  Drafter& d = *opt_.drafter;
  const int64_t V = model_.spec().vocab_size, H = model_.spec().hidden;
  const int64_t L = int64_t(s.tokens.size());
  const int32_t root = r.next;
  try {
    if (spec_owner_ != r.id || spec_synced_ != s.tokens.size()) d.restart(s.hidden, L);
    spec_owner_ = 0;  // until this step completes
    std::vector<int32_t> history = s.tokens;
    history.push_back(root);
    // The picks are the plain ticks' draws in order (sample_row); after the request ends the walk stops.
    auto pick = [&](const float* l) -> int32_t {
      if (r.finished) return -1;
      pick_buf_.assign(l, l + V);
      return sample_row(r, pick_buf_.data());
    };
    const int64_t want = std::min<int64_t>({r.o.max_tokens - int64_t(r.generated.size()), model_.n_ctx() - L,
                                            int64_t(DraftTree::kMaxNodes)});
    const std::vector<int32_t> emitted = spec_->step(root, history, int(std::max<int64_t>(1, want)), pick, r.slot);
    // The cache now holds the root and the accepted nodes (every emitted token but the last).
    s.tokens.push_back(root);
    s.tokens.insert(s.tokens.end(), emitted.begin(), emitted.end() - 1);
    MCPM_ASSERT(int64_t(s.tokens.size()) == model_.seq_len(r.slot));
    if (d.needs_hidden()) {
      const std::vector<int32_t>& path = spec_->last_path();
      std::vector<float> h(path.size() * size_t(H));
      model_.hidden_rows(std::vector<int64_t>(path.begin(), path.end()), h.data());
      s.hidden.insert(s.hidden.end(), h.begin(), h.end());
    }
    if (!r.finished && int64_t(s.tokens.size()) >= model_.n_ctx()) finish(r, FinishReason::Context);
    spec_owner_ = r.id;
    spec_synced_ = s.tokens.size();
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.spec_steps;
    stats_.spec_tokens += uint64_t(emitted.size() - (emitted.back() < 0 ? 1 : 0));
  } catch (const std::exception& e) {
    MCPM_LOG_WARN("scheduler: speculative step of request {} failed: {}", r.id, e.what());
    model_.truncate(r.slot, 0);
    s.tokens.clear();
    s.hidden.clear();
    finish(r, FinishReason::Cancelled, e.what());
  }
  return true;
}

bool Scheduler::step() {
  // Admit and cancel.
  std::vector<uint64_t> cancelled;
  {
    std::unique_lock<std::mutex> lock(mu_);
    cancelled.assign(cancelled_.begin(), cancelled_.end());
    cancelled_.clear();
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (std::find(cancelled.begin(), cancelled.end(), (*it)->id) != cancelled.end()) {
        auto r = std::move(*it);
        it = queue_.erase(it);
        lock.unlock();
        finish(*r, FinishReason::Cancelled);
        r->sink(std::move(r->out));
        lock.lock();
      } else {
        ++it;
      }
    }
  }
  for (auto& r : active_)
    if (std::find(cancelled.begin(), cancelled.end(), r->id) != cancelled.end()) finish(*r, FinishReason::Cancelled);
  for (;;) {
    std::unique_ptr<Request> r;
    {
      std::lock_guard<std::mutex> lock(mu_);
      const bool free_slot = std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return !s.req; });
      if (queue_.empty() || !free_slot) break;
      r = std::move(queue_.front());
      queue_.pop_front();
      stats_.queued = int64_t(queue_.size());
      ++stats_.active;  // counted at once: submit() sees a taken slot even while this tick runs
    }
    admit(std::move(r));
  }

  // A request decoding alone: a speculative tick instead of a one-token batch.
  Request* solo = nullptr;
  if (spec_) {
    int n = 0;
    for (auto& r : active_)
      if (!r->finished) ++n, solo = r.get();
    if (n != 1 || solo->next < 0) solo = nullptr;
  }

  // One batch: the decode token of every decoding request, then prefill chunks.
  Batch batch;
  batch.row_invariant = opt_.row_invariant;
  std::vector<Request*> sampling;
  std::vector<int64_t> rows;
  std::vector<std::pair<Request*, int64_t>> prefill;  // request, tokens added this tick
  const int64_t budget = model_.options().max_batch;
  for (auto& r : active_)
    if (!solo && !r->finished && r->next >= 0) {
      batch.add(r->next, r->slot);
      rows.push_back(batch.size() - 1);
      sampling.push_back(r.get());
    }
  for (auto& r : active_) {
    if (solo || r->finished || r->next >= 0) continue;
    const int64_t left = int64_t(r->o.prompt.size()) - r->fed;
    const int64_t n = std::min({left, opt_.prefill_chunk, budget - batch.size()});
    if (n <= 0) continue;
    for (int64_t i = 0; i < n; ++i) batch.add(r->o.prompt[size_t(r->fed + i)], r->slot);
    prefill.emplace_back(r.get(), n);
    if (n == left) {
      rows.push_back(batch.size() - 1);
      sampling.push_back(r.get());
    }
  }

  const double t0 = now_seconds();
  bool worked = solo && spec_tick(*solo);
  if (batch.size() > 0) {
    worked = true;
    try {
      model_.forward(batch);
      if (opt_.drafter && opt_.drafter->needs_hidden()) {  // what a later speculative tick on these slots starts from
        const int64_t H = model_.spec().hidden;
        std::vector<int64_t> all(size_t(batch.size()));
        for (int64_t i = 0; i < batch.size(); ++i) all[size_t(i)] = i;
        std::vector<float> h(size_t(batch.size() * H));
        model_.hidden_rows(all, h.data());
        for (int64_t i = 0; i < batch.size(); ++i) {
          std::vector<float>& dst = slots_[size_t(batch.seq[size_t(i)])].hidden;
          dst.insert(dst.end(), h.begin() + i * H, h.begin() + (i + 1) * H);
        }
      }
      const int64_t V = model_.spec().vocab_size;
      logits_.resize(rows.size() * size_t(V));
      if (!rows.empty()) model_.logits_rows(rows, logits_.data());
      for (auto& r : active_)
        if (!r->finished && r->next >= 0) {
          slots_[size_t(r->slot)].tokens.push_back(r->next);
          r->next = -1;
        }
      for (auto& [r, n] : prefill) {
        Slot& s = slots_[size_t(r->slot)];
        s.tokens.insert(s.tokens.end(), r->o.prompt.begin() + r->fed, r->o.prompt.begin() + r->fed + n);
        r->fed += n;
        if (r->fed == int64_t(r->o.prompt.size())) model_.set_prefill_end(r->slot, 0);
      }
      for (size_t i = 0; i < sampling.size(); ++i) sample_row(*sampling[i], logits_.data() + i * size_t(V));
    } catch (const std::exception& e) {
      MCPM_LOG_WARN("scheduler: batch of {} tokens failed: {}", batch.size(), e.what());
      // The KV of the slots in this batch is unknown now: forget it and fail their requests.
      for (int32_t s : batch.seq) {
        model_.truncate(s, 0);
        slots_[size_t(s)].tokens.clear();
        slots_[size_t(s)].hidden.clear();
        if (slots_[size_t(s)].req) finish(*slots_[size_t(s)].req, FinishReason::Cancelled, e.what());
      }
    }
  }

  // Deliver updates; retire finished requests (their slot keeps its KV for prefix reuse).
  for (auto it = active_.begin(); it != active_.end();) {
    Request& r = **it;
    r.out.n_prompt = int64_t(r.o.prompt.size());
    r.out.n_cached = r.n_cached;
    r.out.n_generated = int64_t(r.generated.size());
    if (r.finished) {  // counted as gone before its last update: a client that reads the end sees a free slot
      std::lock_guard<std::mutex> lock(mu_);
      --stats_.active;
    }
    if (r.finished || !r.out.text.empty() || !r.out.tokens.empty()) {
      RequestUpdate u = std::move(r.out);
      r.out = RequestUpdate{};
      r.sink(std::move(u));
    }
    if (r.finished) {
      Slot& s = slots_[size_t(r.slot)];
      s.req = nullptr;
      s.last_used = ++tick_;
      model_.set_prefill_end(r.slot, 0);
      if (r.fed < int64_t(r.o.prompt.size())) {  // cancelled mid-prompt: the slot holds a valid prefix
        MCPM_ASSERT(int64_t(s.tokens.size()) == model_.seq_len(r.slot));
      }
      it = active_.erase(it);
      worked = true;
    } else {
      ++it;
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (batch.size() > 0 || solo) ++stats_.steps, stats_.busy_seconds += now_seconds() - t0;
  return worked;
}

void Scheduler::worker() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty() || !active_.empty() || !cancelled_.empty(); });
      if (stop_) break;
    }
    step();
  }
}

void Scheduler::start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { worker(); });
}

void Scheduler::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  // Everything still queued or running ends as cancelled.
  std::deque<std::unique_ptr<Request>> q;
  {
    std::lock_guard<std::mutex> lock(mu_);
    q.swap(queue_);
    stats_.queued = 0;
  }
  for (auto& r : q) {
    finish(*r, FinishReason::Cancelled);
    r->sink(std::move(r->out));
  }
  for (auto& r : active_) {
    finish(*r, FinishReason::Cancelled);
    r->sink(std::move(r->out));
    slots_[size_t(r->slot)].req = nullptr;
  }
  active_.clear();
  std::lock_guard<std::mutex> lock(mu_);
  stats_.active = 0;
}

}  // namespace mcpm
