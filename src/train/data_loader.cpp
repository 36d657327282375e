// Training windows from token shards (see data_loader.h).
#include "train/data_loader.h"

#include <algorithm>

#include "core/error.h"

namespace mcpm::train {

DataSource::DataSource(const std::vector<std::string>& shard_paths, bool doc_aligned)
    : paths_(shard_paths), doc_aligned_(doc_aligned) {
  MCPM_CHECK(!shard_paths.empty(), "no data shards given");
  for (const auto& p : shard_paths) {
    auto s = std::make_unique<data::TokenShard>(p);
    if (vocab_ == 0) vocab_ = s->header().vocab_size;
    MCPM_CHECK(s->header().vocab_size == vocab_, "{}: vocab size {} differs from {} of {} (shards of different tokenizers?)",
               p, s->header().vocab_size, vocab_, shard_paths[0]);
    begin_.push_back(total_);
    if (doc_aligned) {
      MCPM_CHECK(s->header().bos_id >= 0, "{}: document-aligned sampling needs a shard whose documents start with BOS", p);
      for (uint64_t d : s->document_starts()) doc_starts_.push_back(total_ + d);
    }
    total_ += s->size();
    shards_.push_back(std::move(s));
  }
  MCPM_CHECK(total_ >= 2, "data shards {} hold {} tokens: too few to train on", shard_paths[0], total_);
  if (doc_aligned) MCPM_CHECK(!doc_starts_.empty(), "{}: no document starts (BOS tokens) found", shard_paths[0]);
}

bool DataSource::has_mask() const {
  for (const auto& s : shards_)
    if (s->has_mask()) return true;
  return false;
}

void DataSource::window(uint64_t start, int64_t T, int32_t* inputs, int32_t* targets, uint8_t* mask) const {
  const uint64_t need = uint64_t(T) + 1;
  MCPM_CHECK(total_ >= need, "data ({} tokens in {}) is shorter than one training sequence of {} tokens", total_,
             paths_[0], need);
  start = std::min(start, total_ - need);
  std::vector<int32_t> tok(need);
  std::vector<uint8_t> m(need);
  uint64_t pos = start, done = 0;
  size_t si = size_t(std::upper_bound(begin_.begin(), begin_.end(), start) - begin_.begin()) - 1;
  while (done < need) {
    const auto& s = *shards_[si];
    const uint64_t off = pos - begin_[si], n = std::min(need - done, s.size() - off);
    s.read(off, n, tok.data() + done, m.data() + done);
    done += n;
    pos += n;
    ++si;
  }
  for (int64_t t = 0; t < T; ++t) {
    inputs[t] = tok[size_t(t)];
    targets[t] = tok[size_t(t) + 1];
    mask[t] = m[size_t(t) + 1];
  }
}

uint64_t DataSource::random_start(DataRng& rng, int64_t T) const {
  if (doc_aligned_) return doc_starts_[size_t(rng.below(doc_starts_.size()))];
  const uint64_t need = uint64_t(T) + 1;
  return total_ > need ? rng.below(total_ - need + 1) : 0;
}

int64_t Batch::n_targets() const {
  int64_t n = 0;
  for (uint8_t m : mask) n += m;
  return n;
}

DataLoader::DataLoader(std::shared_ptr<DataSource> main, std::shared_ptr<DataSource> decay_mix,
                       double decay_mix_fraction, uint64_t seed)
    : main_(std::move(main)), mix_(std::move(decay_mix)), mix_fraction_(decay_mix_fraction) {
  MCPM_CHECK(main_, "no training data");
  MCPM_CHECK(mix_fraction_ >= 0 && mix_fraction_ <= 1, "decay mix fraction must be in [0, 1] (got {})", mix_fraction_);
  if (mix_)
    MCPM_CHECK(mix_->vocab_size() == main_->vocab_size(), "decay-mix shards have vocab {} but the training shards {}",
               mix_->vocab_size(), main_->vocab_size());
  rng_.state = seed * 0x2545f4914f6cdd1dull + 0x5851f42d4c957f2dull;
}

void DataLoader::next(Batch& b, int64_t B, int64_t T, bool in_decay) {
  b.B = B;
  b.T = T;
  b.inputs.resize(size_t(B * T));
  b.targets.resize(size_t(B * T));
  b.mask.resize(size_t(B * T));
  for (int64_t i = 0; i < B; ++i) {
    // Always draw the mixing coin so that the stream of draws has the same shape in every phase.
    const double coin = rng_.uniform();
    const DataSource& src = (in_decay && mix_ && coin < mix_fraction_) ? *mix_ : *main_;
    const uint64_t start = src.random_start(rng_, T);
    src.window(start, T, b.inputs.data() + i * T, b.targets.data() + i * T, b.mask.data() + i * T);
  }
}

std::vector<Batch> eval_batches(const DataSource& src, int64_t B, int64_t T, int64_t max_sequences) {
  // Window i starts at i*T (every token of the stream is predicted by exactly one window); when the
  // stream holds more windows than max_sequences, an evenly spaced subset of them is used.
  const int64_t n_windows = src.n_tokens() > uint64_t(T) ? int64_t((src.n_tokens() - 1) / uint64_t(T)) : 0;
  const int64_t n_use = max_sequences > 0 ? std::min(n_windows, max_sequences) : n_windows;
  std::vector<uint64_t> starts;
  for (int64_t i = 0; i < n_use; ++i) starts.push_back(uint64_t(i * n_windows / n_use) * uint64_t(T));
  MCPM_CHECK(!starts.empty(), "evaluation data ({} tokens in {}) is shorter than one sequence of {} tokens",
             src.n_tokens(), src.paths()[0], T + 1);
  std::vector<Batch> out;
  for (size_t i = 0; i < starts.size(); i += size_t(B)) {
    Batch b;
    b.B = B;
    b.T = T;
    b.inputs.assign(size_t(B * T), 0);
    b.targets.assign(size_t(B * T), 0);
    b.mask.assign(size_t(B * T), 0);  // rows past the last window stay fully masked out
    for (size_t j = i; j < std::min(starts.size(), i + size_t(B)); ++j) {
      const int64_t row = int64_t(j - i);
      src.window(starts[j], T, b.inputs.data() + row * T, b.targets.data() + row * T, b.mask.data() + row * T);
    }
    out.push_back(std::move(b));
  }
  return out;
}

}  // namespace mcpm::train
