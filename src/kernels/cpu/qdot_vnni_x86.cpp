// AVX512-VNNI integer dot kernels on 256-bit registers (built with AVX512F/VL/VNNI flags, called
// after run-time dispatch): u8 x s8 quads straight into int32 with vpdpbusd.
#include <immintrin.h>

namespace {
inline __m256i DotU8S8(__m256i u, __m256i s) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s); }
inline __m256i DotAccU8S8(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_epi32(acc, u, s); }
// Small-code accumulation (q4, t2; see qdot_x86-inl.h): straight into int32 here.
inline __m256i SmallAccAdd(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_epi32(acc, u, s); }
inline __m256i SmallAccFinish(__m256i acc) { return acc; }
}  // namespace
#define QDOT_EXACT_U8 1  // u8 x s8 products summed without int16 saturation
#define QDOT_NAME(t) qdot_##t##_vnni
#include "kernels/cpu/qdot_x86-inl.h"
