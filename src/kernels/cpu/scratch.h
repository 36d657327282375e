// Per-thread scratch for kernels whose signature has no scratch argument (matmul): one growable,
// 64-byte aligned buffer per (thread, slot). It grows to the largest size asked for and is then
// reused, so steady-state calls never allocate. Pool threads live as long as the pool.
#pragma once
#include <cstddef>

namespace mcpm::cpu {

enum class ScratchSlot : int {
  MatmulX,      // caller thread: activations converted to bf16 [Tp, Kp]
  MatmulPanel,  // each thread: one packed weight panel
  GemvX,        // each thread: activations split into even/odd lanes
  GemvUp,       // each thread: up-projection values of its features (fused gate/up GEMV)
  QuantPanel,   // caller thread: a dequantized panel of quantized weights + its outputs (qmatmul)
  Count,
};

// Returns at least `bytes` bytes, 64-byte aligned, private to the calling thread.
void* thread_scratch(ScratchSlot slot, size_t bytes);

inline constexpr size_t kCacheLine = 64;
inline constexpr size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

}  // namespace mcpm::cpu
