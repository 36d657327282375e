#include "runtime/generator.h"

#include <algorithm>
#include <deque>
#include <optional>

#include "core/error.h"
#include "core/timer.h"
#include "tokenizer/tokenizer.h"

namespace mcpm {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::Eos: return "eos";
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Context: return "context";
    case FinishReason::Cancelled: return "cancelled";
  }
  return "?";
}

size_t stop_prefix_holdback(std::string_view text, const std::vector<std::string>& stops) {
  size_t hold = 0;
  for (const auto& s : stops)
    for (size_t n = std::min(s.size() - 1, text.size()); n > hold; --n)
      if (text.substr(text.size() - n) == std::string_view(s).substr(0, n)) {
        hold = n;
        break;
      }
  return hold;
}

Generator::Generator(Model& model, const Tokenizer* tokenizer) : model_(model), tok_(tokenizer) {
  logits_.resize(size_t(model.spec().vocab_size));
}

void Generator::reset() {
  cache_tokens_.clear();
  model_.truncate(0);
}

void Generator::evaluate(const std::vector<int32_t>& tokens, Drafter* drafter) {
  const int64_t B = model_.options().max_batch;
  model_.set_prefill_end(model_.n_past() + int64_t(tokens.size()));
  for (size_t i = 0; i < tokens.size(); i += size_t(B)) {
    const int64_t n = std::min<int64_t>(B, int64_t(tokens.size() - i));
    model_.forward(tokens.data() + i, n);
    if (drafter) drafter->observe_prefill(model_, tokens.data() + i, n);
    cache_tokens_.insert(cache_tokens_.end(), tokens.begin() + int64_t(i), tokens.begin() + int64_t(i) + n);
    last_row_ = n - 1;
  }
  model_.set_prefill_end(0);
}

GenerateResult Generator::generate(const std::vector<int32_t>& prompt, const GenerateOptions& o, const TextCallback& on_text) {
  MCPM_CHECK(!prompt.empty(), "the prompt is empty (nothing to condition on)");
  const int64_t n_ctx = model_.n_ctx();
  MCPM_CHECK(int64_t(prompt.size()) < n_ctx,
             "the prompt is {} tokens but the context holds {} (raise --ctx, up to the model's limit)", prompt.size(), n_ctx);
  GenerateResult res;
  res.n_prompt = int64_t(prompt.size());

  // Reuse the longest common prefix of the cache; always re-run at least the last prompt token.
  size_t common = 0;
  while (common < cache_tokens_.size() && common < prompt.size() && cache_tokens_[common] == prompt[common]) ++common;
  common = std::min(common, prompt.size() - 1);
  model_.truncate(int64_t(common));
  cache_tokens_.resize(common);
  if (o.drafter) o.drafter->rollback(int64_t(common));
  const double t0 = now_seconds();
  evaluate(std::vector<int32_t>(prompt.begin() + int64_t(common), prompt.end()), o.drafter);
  res.n_prompt_evaluated = int64_t(prompt.size() - common);
  res.prefill_seconds = now_seconds() - t0;

  std::vector<int32_t> eos = model_.spec().eos_ids;
  eos.insert(eos.end(), o.extra_eos_ids.begin(), o.extra_eos_ids.end());
  if (tok_) eos.push_back(tok_->eos_id());
  Sampler sampler(o.sampling);
  for (int32_t t : prompt) sampler.accept(t);
  // Sample on the device when the backend can and no penalty needs the history on the host.
  const SamplerParams& sp = o.sampling;
  const bool on_device = !o.drafter && model_.backend().supports_device_sampling() && sp.repetition_penalty == 1.0f &&
                         sp.presence_penalty == 0.0f && sp.frequency_penalty == 0.0f;
  DeviceSampling ds{sp.temperature, sp.top_k, sp.top_p, sp.min_p, sp.seed, 0};
  auto next_token = [&]() -> int32_t {
    if (on_device) {
      ++ds.step;
      return model_.sample(last_row_, ds);
    }
    model_.logits(last_row_, 1, logits_.data());
    return sampler.sample(logits_.data(), model_.spec().vocab_size);
  };

  std::optional<StreamingDecoder> stream;
  if (tok_) stream.emplace(*tok_);
  std::string pending;  // decoded text not yet streamed (possible start of a stop string)
  const double t1 = now_seconds();
  bool cancelled = false;
  res.finish = FinishReason::Length;
  std::optional<SpecDecoder> spec;
  if (o.drafter) spec.emplace(model_, *o.drafter, o.spec);
  // Tokens chosen but not yet emitted: one after a plain step, the accepted path after a speculative one.
  std::deque<int32_t> ready;
  std::vector<int32_t> history;  // with a drafter: every token of the sequence, the next root last
  if (spec) history = prompt;
  for (int64_t i = 0; i < o.max_tokens; ++i) {
    if (ready.empty()) {
      ready.push_back(next_token());
      if (spec) sampler.accept(ready.back());
    }
    const int32_t tok = ready.front();
    ready.pop_front();
    if (o.stop_on_eos && std::find(eos.begin(), eos.end(), tok) != eos.end()) {
      res.finish = FinishReason::Eos;
      break;
    }
    res.tokens.push_back(tok);
    if (!spec) sampler.accept(tok);  // the speculative walk records its picks itself
    if (stream) {
      pending += stream->push(tok);
      // Stop strings: text already streamed never holds the start of one (see holdback below), so
      // searching `pending` is enough. Cut at the earliest occurrence.
      size_t cut = std::string::npos;
      for (const auto& s : o.stop_strings)
        if (!s.empty()) cut = std::min(cut, pending.find(s));
      if (cut != std::string::npos) {
        const std::string emit = pending.substr(0, cut);
        if (!emit.empty() && on_text) on_text(emit);
        res.text += emit;
        pending.clear();
        res.finish = FinishReason::Stop;
        break;
      }
      const size_t hold = stop_prefix_holdback(pending, o.stop_strings);
      if (pending.size() > hold) {
        const std::string emit = pending.substr(0, pending.size() - hold);
        res.text += emit;
        pending.erase(0, pending.size() - hold);
        if (on_text && !on_text(emit)) {
          cancelled = true;
          res.finish = FinishReason::Cancelled;
          break;
        }
      }
    }
    if (model_.n_past() >= n_ctx) {
      res.finish = FinishReason::Context;
      break;
    }
    if (i + 1 < o.max_tokens && ready.empty()) {
      if (spec) {
        // Root = tok; the step caches it and the accepted drafts and returns what to emit next.
        history.push_back(tok);
        const std::vector<int32_t> out =
            spec->step(tok, history, int(std::min<int64_t>(o.max_tokens - i - 1, DraftTree::kMaxNodes)),
                       [&](const float* row) {
                         std::copy(row, row + model_.spec().vocab_size, logits_.data());
                         const int32_t t = sampler.sample(logits_.data(), model_.spec().vocab_size);
                         sampler.accept(t);
                         return t;
                       });
        cache_tokens_.push_back(tok);
        cache_tokens_.insert(cache_tokens_.end(), out.begin(), out.end() - 1);
        history.insert(history.end(), out.begin(), out.end() - 1);
        ready.assign(out.begin(), out.end());
      } else {
        model_.forward(&tok, 1);
        cache_tokens_.push_back(tok);
        last_row_ = 0;
      }
    }
  }
  if (stream && res.finish != FinishReason::Stop && !cancelled) {
    pending += stream->flush();
    for (const auto& s : o.stop_strings)
      if (const size_t cut = s.empty() ? std::string::npos : pending.find(s); cut != std::string::npos) {
        pending.resize(cut);
        res.finish = FinishReason::Stop;
      }
    if (!pending.empty()) {
      res.text += pending;
      if (on_text) on_text(pending);
    }
  }
  res.decode_seconds = now_seconds() - t1;
  if (spec) res.spec = spec->stats();
  return res;
}

}  // namespace mcpm
