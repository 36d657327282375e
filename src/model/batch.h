// Batch: the one input type of the model's multi-sequence forward pass (Model::forward(const Batch&)).
// Tokens of several sequences (KV slots), at any positions, with an optional per-token ancestor mask:
// the server's continuous batching, speculative tree verification, multi-choice evaluation and
// plain prefill/decode (one sequence, causal) are all this one call.
//
// Rules (checked by Model::forward, with errors that say which token broke which rule):
// - The tokens of one sequence form one contiguous run in the batch (at most one run per sequence).
// - A run of sequence s is appended to s's cache: its token i gets cache row seq_len(s) + i, and
//   seq_len(s) grows by the run length.
// - pos[i] is the RoPE position of token i; empty pos = the cache row (plain append). Positions are
//   free (tree nodes use L + depth, several nodes share a position).
// - Visibility: token i of a run always sees every row its sequence had cached before the call.
//   Within the run it sees run tokens j <= i (causal), or, when tree_mask is given, exactly the run
//   tokens j whose bit j is set in tree_mask[i] (bit i must be set and no bit above i: parent-first
//   order). A run with a mask has at most 64 tokens.
// - row_invariant: every row's result (logits, hidden state) is bit for bit what a one-token forward
//   of that row would give, whatever else is in the batch (batch-invariant kernels: GEMV matmuls,
//   decode-style attention). Speculative verification needs it for exact greedy identity; the server
//   uses it for deterministic output under concurrency. Costs speed for large runs.
#pragma once
#include <cstdint>
#include <vector>

namespace mcpm {

struct Batch {
  std::vector<int32_t> tokens;      // [T] token ids
  std::vector<int32_t> seq;         // [T] sequence slot of each token (0 .. n_seq-1)
  std::vector<int32_t> pos;         // [T] RoPE positions, or empty = cache rows
  std::vector<uint64_t> tree_mask;  // [T] ancestor-or-self bits within the token's run, or empty = causal
  bool row_invariant = false;
  // EAGLE draft heads only: the feature row [T, H] of each token (the target's final-norm hidden
  // state, or the draft's own output when drafting deeper), paired with the token's embedding.
  std::vector<float> features;

  int64_t size() const { return int64_t(tokens.size()); }
  void clear() { tokens.clear(), seq.clear(), pos.clear(), tree_mask.clear(), features.clear(), row_invariant = false; }
  // Appends a token of sequence s; position < 0 = its cache row (only valid when pos stays empty).
  void add(int32_t token, int32_t s, int32_t position = -1) {
    tokens.push_back(token);
    seq.push_back(s);
    if (position >= 0) pos.push_back(position);
  }
};

// One run of a validated batch: the tokens [t0, t0 + n) of sequence `seq`, appended at cache row `row0`.
struct BatchRun {
  int32_t seq = 0;
  int64_t t0 = 0, n = 0;
  int64_t row0 = 0;  // seq_len(seq) before the call
};

}  // namespace mcpm
