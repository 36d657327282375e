// AVX2 integer dot kernels (built with -mavx2 -mfma, called after run-time dispatch): u8 x s8
// pairs with vpmaddubsw (int16, no saturation for |u| <= 128, |s| <= 127), then vpmaddwd by 1.
#include <immintrin.h>

namespace {
inline __m256i DotU8S8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}
inline __m256i DotAccU8S8(__m256i acc, __m256i u, __m256i s) { return _mm256_add_epi32(acc, DotU8S8(u, s)); }
// Small-code accumulation (q4, t2; see qdot_x86-inl.h): int16 pair sums added over the activation
// block, widened once: |pair| <= 2 * 15 * 127, four blocks <= 15240 < 32767.
inline __m256i SmallAccAdd(__m256i acc, __m256i u, __m256i s) { return _mm256_add_epi16(acc, _mm256_maddubs_epi16(u, s)); }
inline __m256i SmallAccFinish(__m256i acc) { return _mm256_madd_epi16(acc, _mm256_set1_epi16(1)); }
}  // namespace
#define QDOT_EXACT_U8 0  // u8 x s8 products summed without int16 saturation
#define QDOT_NAME(t) qdot_##t##_avx2
#include "kernels/cpu/qdot_x86-inl.h"
