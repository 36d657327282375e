// Model: a loaded MiniCPM4 checkpoint on a backend — weights, KV cache and scratch in one memory
// plan — and its forward pass, written once against the Backend op table.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/memory_plan.h"
#include "io/checkpoint.h"
#include "kernels/types.h"
#include "model/batch.h"
#include "model/sparse.h"
#include "model/spec.h"
#include "model/tensor_names.h"

namespace mcpm {

class Model;

// Progress bar on stderr while the weights load: Auto shows it on a terminal for checkpoints of
// 512 MiB or more.
enum class LoadProgress { Off, Auto, On };

struct LoadOptions {
  int64_t n_ctx = 0;            // KV capacity in tokens; 0 = min(max_position_embeddings, 4096)
  int64_t max_batch = 512;      // most tokens per forward() call (prefill chunk)
  int64_t max_logit_rows = 64;  // most rows per logits() call
  DType kv_dtype = DType::BF16;  // BF16 or F32
  SparseMode sparse = SparseMode::Auto;  // InfLLM v2 (config.json sparse_config): auto, on, off
  int64_t n_seq = 1;            // sequences (KV slots) held at once, each of n_ctx rows
  // Host-memory backends read a weight in place from the memory-mapped checkpoint when its stored
  // form is what the kernels read (same dtype, aligned); false copies every weight into the arena.
  bool mmap_weights = true;
  // Reads the in-place weights' pages in at load (false: they come in as the forward first reads
  // them, e.g. the quantizer's layer-by-layer pass, which touches one layer at a time).
  bool prefault = true;
  LoadProgress progress = LoadProgress::Off;
  // Weight types (kernels/weight_types.h; docs/quantization.md). Linears: "" = as stored (GPTQ
  // folders load as q4/q8, BitCPM4 ternary bf16 folders as t2), or "q8" / "q4" / "t2" = round to
  // nearest at load from a dense checkpoint, `weight_group` columns per scale (0: per row).
  std::string weight_type = {};
  int64_t weight_group = 128;
  // Embedding / lm_head: "" = as stored, or "q8" / "q4" (RTN at load, `head_group` per scale).
  std::string head_type = {};
  int64_t head_group = 128;
  // Dense linears whose values are ternary per row / per group (BitCPM4 fake-quant) run as t2.
  bool detect_ternary = true;
  // EAGLE draft heads (a folder with fc.weight): the target they draft for (its embedding and lm_head
  // are shared, same backend) and the FR-Spec vocabulary (draft logit i = token draft_vocab[i];
  // empty = the full vocabulary).
  const Model* draft_of = nullptr;
  std::vector<int32_t> draft_vocab;
};

struct LayerWeights {
  const float* attn_norm = nullptr;  // [H]
  Matrix wq;                         // [nh*d, H]
  Matrix wk, wv;                     // [nkv*d, H]
  Matrix wo;                         // [H, nh*d]
  const float* ffn_norm = nullptr;   // [H]
  Matrix w_gate, w_up;               // [F, H]
  Matrix w_down;                     // [H, F]
};

struct EagleWeights {
  Matrix fc;                          // [H, 2H]: columns [0, H) act on the embedding, [H, 2H) on the feature
  const float* fc_bias = nullptr;     // [H] or null
  const float* input_norm1 = nullptr; // [H]
  const float* input_norm2 = nullptr; // [H]
};

struct ModelWeights {
  Matrix embed;                  // [V, H] (EAGLE: the target's)
  EagleWeights eagle;            // EAGLE draft heads only
  std::vector<LayerWeights> layers;
  const float* final_norm = nullptr;  // [H]
  Matrix lm_head;                // [V, H] (the embedding when tied; EAGLE: the target's, or its FR-Spec rows [Vd, H])
};

// Inputs of a layer's linears, as the quantizer's calibration sees them (host copies).
enum class TapSite { AttnIn, AttnOut, FfnIn, FfnOut };  // q/k/v, o, gate/up, down
// x [T, K] host memory; return true to stop the forward pass right there.
using ForwardTap = std::function<bool(int layer, TapSite site, const float* x, int64_t T, int64_t K)>;

class Model {
 public:
  // Validates the whole folder first (every tensor's name, dtype and shape); nothing is allocated
  // for a broken checkpoint. Throws mcpm::Error naming the file/field.
  static std::unique_ptr<Model> load(const std::string& dir, Backend& backend, const LoadOptions& options);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;
  // Checks a checkpoint folder against its config without loading weights; returns the spec.
  static ModelSpec validate(const CheckpointFolder& folder);

  const ModelSpec& spec() const { return spec_; }
  const LoadOptions& options() const { return options_; }
  const MemoryPlan& plan() const { return plan_; }
  const std::string& dir() const { return dir_; }
  Backend& backend() { return *backend_; }
  const Backend& backend() const { return *backend_; }
  int64_t n_ctx() const { return options_.n_ctx; }
  int64_t n_past() const { return seqs_[0].len; }
  const RopeTables& rope() const { return rope_host_; }
  // How the weights are stored in memory, e.g. "linears q4 g128 (gptq 4-bit g128 sym (v1 zeros)), head bf16".
  const std::string& weight_summary() const { return weight_summary_; }
  const ModelWeights& weights() const { return w_; }
  // Bytes of weights read per decoded token (for the bandwidth floor).
  size_t weight_bytes_per_token() const;
  size_t kv_bytes_per_token() const;  // all layers, K and V
  // Width of a logits row: vocab_size, or the FR-Spec vocabulary of an EAGLE draft head.
  int64_t n_logits() const { return n_logits_; }
  bool is_draft() const { return spec_.eagle.has_value(); }
  const std::vector<int32_t>& draft_vocab() const { return options_.draft_vocab; }

  // Runs T tokens (1 <= T <= max_batch) at positions n_past .. n_past+T-1 and appends them to the
  // KV cache. Afterwards the final-norm hidden states of these T tokens are ready for logits().
  void forward(const int32_t* tokens, int64_t T);
  // logits [n_rows, V] (host memory) for rows [row0, row0+n_rows) of the last forward() call.
  void logits(int64_t row0, int64_t n_rows, float* out);
  // Samples the next token from row `row` of the last forward() on the device (backend must
  // support_device_sampling); only the token id comes back to the host.
  int32_t sample(int64_t row, const DeviceSampling& sampling);
  // Forgets every position >= pos (speculative rollback, new chat turn with a shorter prefix).
  void truncate(int64_t pos);

  // ---- several sequences (KV slots); model/batch.h has the rules ----
  // The single-sequence calls above are sequence 0: forward(tokens, T) is a one-run causal batch.
  int64_t n_seq() const { return options_.n_seq; }
  int64_t seq_len(int s) const;  // rows cached for sequence s
  // Runs a batch (1 <= size <= max_batch). Afterwards the final-norm hidden states of its tokens
  // are ready for logits() / logits_rows() / hidden_rows(), indexed by batch token.
  void forward(const Batch& batch);
  const std::vector<BatchRun>& last_runs() const { return last_runs_; }
  // Forgets rows >= len of sequence s.
  void truncate(int s, int64_t len);
  // Sequence dst := the first n rows of sequence src (prefix cache hit into another slot, forking a
  // shared context); dst's later rows are forgotten. src == dst truncates.
  void copy_seq(int src, int dst, int64_t n);
  // KV compaction after tree verification: rows from[j] of sequence s move to row to + j, for j in
  // order (from ascending, from[j] >= to + j); seq_len(s) becomes to + from.size().
  void move_rows(int s, const std::vector<int64_t>& from, int64_t to);
  // logits [rows.size(), V] (host) of the given tokens of the last batch, one lm_head pass for all.
  void logits_rows(const std::vector<int64_t>& rows, float* out);
  // Final-norm hidden states [rows.size(), H] (host) of the given tokens of the last batch (before the
  // logit scale: the feature an EAGLE draft head reads; for a draft head, its output z').
  void hidden_rows(const std::vector<int64_t>& rows, float* out);

  // ---- InfLLM v2 sparse attention (docs/infllmv2.md) ----
  // Active when the checkpoint has a sparse_config and --sparse is not off (the memory plan then
  // holds the compressed key caches, the block index and the selection scratch: category "sparse").
  bool sparse_active() const { return sparse_.has_value(); }
  const InfllmParams& sparse_params() const { return sparse_.value(); }  // requires sparse_active()
  int64_t dense_len() const { return dense_len_; }
  // Whether a forward() call whose keys end at L (= n_past + T) runs the sparse path: sparse is
  // active and enabled and (dense_len == -1 or L >= dense_len), as the HF driver decides per call.
  bool sparse_step(int64_t L) const;
  // A prompt fed in several forward() calls is one HF call of length `end`: while n_past < end, the
  // dense/sparse decision uses `end` (so a long prompt runs sparse from its first chunk, as HF's
  // single-call prefill does). 0 clears it. The Generator and perplexity set it around a prompt.
  void set_prefill_end(int64_t end) { seqs_[0].prefill_end = end; }
  void set_prefill_end(int s, int64_t end);
  // Runtime switch for benchmarks and tests: false runs every call dense (same memory plan); the
  // compressed caches are rebuilt from the K cache on the next sparse call.
  void set_sparse_enabled(bool on) { sparse_enabled_ = on; }
  // Block ids [n_kv, T, topk_total] chosen by the last layer in the last sparse call (host copy).
  std::vector<int32_t> last_block_index();

  // ---- quantizer hooks (runtime/quantize.cpp) ----
  // Called with the input of every linear group of every layer during forward(); null = off.
  void set_forward_tap(ForwardTap tap) { tap_ = std::move(tap); }
  // A layer's linear (role AttnQ .. FfnDown).
  const Matrix& linear(int layer, TensorRole role) const;
  // Overwrites a dense linear with w [N, K] f32 (rounded to the matrix's dtype): the quantizer's
  // true-sequential updates. A linear read in place from the mapped checkpoint gets a buffer of its
  // own (host backends), one in the arena is overwritten there.
  void set_linear_weights(int layer, TensorRole role, const float* w);
  // Sequence 0 (truncated to 0 first) through layers [first, last) only: x_in [T, H] is the input
  // of layer `first` (may be null when first = 0: the scaled token embedding); x_out [T, H], unless null,
  // receives the output of layer last-1 (the residual stream, no final norm). A tap that returns
  // true stops the pass early (x_out is then not written). The quantizer's layer-by-layer pass.
  void forward_layers(const int32_t* tokens, int64_t T, int first, int last, const float* x_in, float* x_out);
  // The quantizer is done with layer l: its replaced linears are freed and the mapped pages of its
  // tensors dropped. A later forward through layer l is an error.
  void release_layer(int l);

  // Benchmarks at long depths on slow machines: makes positions [0, n) of every layer's K/V cache
  // random values (as if n tokens had been run) without running the model; n_past becomes n.
  void fill_random_context(int64_t n, uint64_t seed);

 private:
  Model() = default;
  // Per-sequence state (KV slot s).
  struct SeqState {
    int64_t len = 0;          // cached rows
    int64_t comp_len = 0;     // InfLLM v2: compressed kernels are valid for every window ending at or before this
    int64_t prefill_end = 0;  // see set_prefill_end
  };
  KvLayer kv_layer(int layer, int s = 0) const;
  CompressedKeys compressed_layer(int layer, int s = 0) const;
  // The op sequence of one batch (captured as a graph for a one-token decode step); run r is sparse
  // (InfLLM v2) when sparse_runs[r].
  void run_layers(int64_t T, const std::vector<BatchRun>& runs, const std::vector<char>& sparse_runs, bool masked);
  void check_batch(const Batch& b, std::vector<BatchRun>& runs) const;

  std::string dir_;
  std::string weight_summary_;
  ForwardTap tap_;
  struct LayerRange {  // forward_layers: the layers run and where the stream comes from / goes
    int first = 0, last = -1;  // last = -1: all layers (a normal forward)
    const float* x_in = nullptr;
    float* x_out = nullptr;
  } range_;
  std::map<std::pair<int, int>, std::vector<uint8_t>> replaced_;  // (layer, role) -> own copy of a mapped linear
  std::vector<char> released_;  // [L] release_layer
  Matrix& linear_mut(int layer, TensorRole role);
  std::vector<float> tap_buf_;
  bool tap_site(int layer, TapSite site, const float* x, int64_t T, int64_t K);
  std::unique_ptr<CheckpointFolder> mapped_;  // kept open while weights are read in place from it
  ModelSpec spec_;
  LoadOptions options_;
  Backend* backend_ = nullptr;
  MemoryPlan plan_;
  void* base_ = nullptr;
  ModelWeights w_;
  RopeTables rope_host_;
  std::vector<SeqState> seqs_;
  int64_t n_logits_ = 0;
  float logit_scale_ = 1.0f;
  int64_t last_T_ = 0;
  std::vector<BatchRun> last_runs_;
  bool last_row_invariant_ = false;
  Batch single_;  // reused by forward(tokens, T)

  // Regions (backend memory).
  float* rope_cos_ = nullptr;  // [n_ctx, d/2]
  float* rope_sin_ = nullptr;
  void* k_cache_ = nullptr;    // [S, L, nkv, n_ctx, d]
  void* v_cache_ = nullptr;
  int32_t* tokens_ = nullptr;     // [B]
  int32_t* positions_ = nullptr;  // [B] RoPE positions
  int32_t* rows_ = nullptr;       // [B] cache row of each token (consecutive within a run)
  uint64_t* tree_mask_ = nullptr; // [B] ancestor bits of tree runs
  float* gather_ = nullptr;       // [R, H] hidden rows gathered for logits_rows
  float* x_ = nullptr;            // [B, H] residual stream
  float* xn_ = nullptr;           // [B, H] normed
  float* q_ = nullptr;            // [B, nh*d]
  float* k_ = nullptr;            // [B, nkv*d]
  float* v_ = nullptr;            // [B, nkv*d]
  float* attn_ = nullptr;         // [B, nh*d]
  float* ffn_ = nullptr;          // [B, F]
  float* ffn_tmp_ = nullptr;      // [B, F]
  float* logits_ = nullptr;       // [R, V]
  float* features_ = nullptr;     // [B, H] EAGLE: uploaded feature rows
  float* concat_ = nullptr;       // [B, 2H] EAGLE: [norm1(embedding) ; norm2(feature)]
  int32_t* zeros_ = nullptr;      // [B] EAGLE: row ids broadcasting fc.bias
  void* attn_scratch_ = nullptr;
  int32_t* sampled_ = nullptr;    // [1] device-sampled token

  // InfLLM v2 state (regions of category "sparse"; null when sparse is not active).
  std::optional<InfllmParams> sparse_;
  int64_t dense_len_ = -1;
  bool sparse_enabled_ = true;
  int64_t last_sparse_T_ = 0;
  void* c1_cache_ = nullptr;        // [S, L, nkv, n_fine(n_ctx), d] kv dtype
  void* c2_cache_ = nullptr;        // [S, L, nkv, n_coarse(n_ctx), d]
  int32_t* block_idx_ = nullptr;    // [nkv, B, topk_total] stage-1 output (reused by every layer)
  void* sparse_scratch_ = nullptr;  // backend infllm scratch
  int32_t* comp_pos_ = nullptr;     // [1] start position of a catch-up compression
};

}  // namespace mcpm
