// Highway target selection shared by every portable kernel file (include before hwy headers).
// x86 builds AVX3 (AVX-512), AVX2 and EMU128 (portable fallback); SSSE3/SSE4 are left out to keep
// compile times down (pre-AVX2 x86 runs the EMU128 code). Arm builds NEON + EMU128: the kernels
// keep register blocks in arrays of vectors, which sizeless SVE/RVV vector types do not allow.
#pragma once

#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS \
  (HWY_SSSE3 | HWY_SSE4 | HWY_SVE | HWY_SVE2 | HWY_SVE_256 | HWY_SVE2_128 | HWY_RVV)
#endif
