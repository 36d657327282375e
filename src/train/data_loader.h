// Batches for the trainer from token shards (data/shard.h).
//
// A DataSource is one or more shards seen as one token stream. Training windows of T+1 tokens are
// drawn at random from it: anywhere (pretraining text) or at document starts (SFT shards, so a
// conversation is seen from its beginning). Inputs are window[0..T), targets window[1..T], and a
// target counts in the loss only where the shard's mask is 1.
//
// The loader's whole state is one 64-bit RNG word (plus the fixed configuration), saved in the
// checkpoint: a resumed run draws exactly the windows the uninterrupted run would have drawn.
// Optionally a second source (e.g. SFT data) is mixed into the decay phase of the schedule with a
// given probability per sequence, as MiniCPM does in its annealing phase.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/shard.h"

namespace mcpm::train {

// splitmix64 with visible state (saved in checkpoints).
struct DataRng {
  uint64_t state = 0;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) { return n ? next() % n : 0; }  // bias < n / 2^64: negligible here
  double uniform() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }
};

class DataSource {
 public:
  // doc_aligned: windows start at document starts (BOS tokens) instead of anywhere.
  DataSource(const std::vector<std::string>& shard_paths, bool doc_aligned);
  uint64_t n_tokens() const { return total_; }
  uint32_t vocab_size() const { return vocab_; }
  bool has_mask() const;
  bool doc_aligned() const { return doc_aligned_; }
  const std::vector<std::string>& paths() const { return paths_; }
  // Writes the window starting at global offset `start` (clamped so it fits) as inputs/targets/mask [T].
  void window(uint64_t start, int64_t T, int32_t* inputs, int32_t* targets, uint8_t* mask) const;
  // A random window start.
  uint64_t random_start(DataRng& rng, int64_t T) const;

 private:
  std::vector<std::string> paths_;
  std::vector<std::unique_ptr<data::TokenShard>> shards_;
  std::vector<uint64_t> begin_;  // global offset of each shard
  std::vector<uint64_t> doc_starts_;  // global offsets (doc_aligned)
  uint64_t total_ = 0;
  uint32_t vocab_ = 0;
  bool doc_aligned_;
};

// One micro-batch [B, T] in host memory.
struct Batch {
  int64_t B = 0, T = 0;
  std::vector<int32_t> inputs, targets;  // [B*T]
  std::vector<uint8_t> mask;             // [B*T]
  int64_t n_targets() const;             // sum of mask
};

class DataLoader {
 public:
  DataLoader(std::shared_ptr<DataSource> main, std::shared_ptr<DataSource> decay_mix, double decay_mix_fraction,
             uint64_t seed);
  // Fills `b` with B sequences of T for optimizer update `step` (in_decay: the schedule's decay phase).
  void next(Batch& b, int64_t B, int64_t T, bool in_decay);
  uint64_t rng_state() const { return rng_.state; }
  void set_rng_state(uint64_t s) { rng_.state = s; }
  const DataSource& main() const { return *main_; }

 private:
  std::shared_ptr<DataSource> main_, mix_;
  double mix_fraction_;
  DataRng rng_;
};

// Held-out evaluation: windows of T+1 tokens starting at multiples of T (each token predicted once),
// all of them or max_sequences evenly spaced ones (0 = all); always the same ones.
std::vector<Batch> eval_batches(const DataSource& src, int64_t B, int64_t T, int64_t max_sequences);

}  // namespace mcpm::train
