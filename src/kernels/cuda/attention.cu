// Attention entry points: picks the kernel family (tensor cores for bf16 KV in fast mode, fp32 SIMT
// otherwise), turns head_dim into a template argument (the one DISPATCH boundary), and lays out the
// split-KV partials in the caller's scratch.
#include <algorithm>

#include "kernels/cuda/attention_internal.h"
#include "kernels/cuda/device_utils.cuh"

namespace mcpm::cuda {

namespace {

constexpr size_t kScratchAlign = 256;

size_t align_up(size_t n) { return (n + kScratchAlign - 1) / kScratchAlign * kScratchAlign; }

attn::Partials partials(void* scratch, int64_t n_heads, int64_t d) {
  char* base = static_cast<char*>(scratch);
  const size_t o_bytes = align_up(size_t(kMaxDecodeSplits) * size_t(n_heads * d) * sizeof(float));
  return {reinterpret_cast<float*>(base), reinterpret_cast<float2*>(base + o_bytes)};
}

void check_args(const AttentionArgs& a) {
  if (!attention_head_dim_supported(a.kv.d)) throw_unsupported("attention head_dim", a.kv.d, __FILE__, __LINE__);
  if (a.kv.n_kv <= 0 || a.n_heads % a.kv.n_kv != 0)
    throw_unsupported("attention head count (not a multiple of the kv heads)", a.n_heads, __FILE__, __LINE__);
}

}  // namespace

bool attention_head_dim_supported(int64_t d) { return d == 32 || d == 64 || d == 128; }

int attention_decode_blocks_per_sm(int64_t d, bool tensor_cores) {
  return MCPM_DISPATCH_HEAD_DIM(d, D, [&] {
    return tensor_cores ? attn::decode_tc_blocks_per_sm<D>() : attn::simt_blocks_per_sm<D>();
  });
}

int attention_decode_splits(int sm_count, int blocks_per_sm, int64_t n_heads, int64_t n_kv, bool tensor_cores) {
  constexpr int64_t kTcRows = 16;
  const int64_t group = n_heads / std::max<int64_t>(1, n_kv);
  const int64_t blocks_per_split = tensor_cores ? n_kv * ceil_div(group, kTcRows) : n_heads;
  const int64_t slots = int64_t(sm_count) * std::max(1, blocks_per_sm);
  return int(std::clamp<int64_t>(slots / std::max<int64_t>(1, blocks_per_split), 1, kMaxDecodeSplits));
}

size_t attention_decode_scratch_bytes(int64_t n_heads, int64_t d) {
  return align_up(size_t(kMaxDecodeSplits) * size_t(n_heads * d) * sizeof(float)) +
         align_up(size_t(kMaxDecodeSplits) * size_t(n_heads) * sizeof(float2));
}

void attention_decode(cudaStream_t stream, const AttentionArgs& a, bool tensor_cores, int n_splits, void* scratch) {
  check_args(a);
  if (a.T != 1) throw_unsupported("decode attention token count", a.T, __FILE__, __LINE__);
  if (n_splits < 1 || n_splits > kMaxDecodeSplits) throw_unsupported("split count", n_splits, __FILE__, __LINE__);
  if (tensor_cores && a.kv.dtype != DType::BF16) tensor_cores = false;
  const attn::Partials p = partials(scratch, a.n_heads, a.kv.d);
  MCPM_DISPATCH_HEAD_DIM(a.kv.d, D, [&] {
    if (tensor_cores) {
      attn::launch_decode_tc<D>(stream, a, n_splits, p);
      attn::launch_combine<D>(stream, a, n_splits, attn::kTcDecodeRule, p);
    } else {
      if (a.kv.dtype == DType::BF16) attn::launch_simt<D, uint16_t>(stream, a, n_splits, p);
      else attn::launch_simt<D, float>(stream, a, n_splits, p);
      // n_splits == 1: the SIMT kernel wrote a.out directly (no partials to merge).
      if (n_splits > 1) attn::launch_combine<D>(stream, a, n_splits, attn::kSimtDecodeRule, p);
    }
  });
}

void attention_prefill(cudaStream_t stream, const AttentionArgs& a, bool tensor_cores) {
  check_args(a);
  if (a.T <= 0) return;
  if (tensor_cores && a.kv.dtype != DType::BF16) tensor_cores = false;
  MCPM_DISPATCH_HEAD_DIM(a.kv.d, D, [&] {
    if (tensor_cores) attn::launch_prefill_tc<D>(stream, a);
    else if (a.kv.dtype == DType::BF16) attn::launch_simt<D, uint16_t>(stream, a, 1, {});
    else attn::launch_simt<D, float>(stream, a, 1, {});
  });
}

void attention_init() {
  attn::init_prefill_tc<32>();
  attn::init_prefill_tc<64>();
  attn::init_prefill_tc<128>();
}

}  // namespace mcpm::cuda
