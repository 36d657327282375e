// Run-time CPU feature detection for kernel dispatch (x86: AVX2, AVX-512, AVX512-VNNI, AVX512-BF16, AMX).
#pragma once
#include <string>

namespace mcpm {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512bf16 = false;
  bool avx512vnni = false;  // VPDPBUSD (with AVX512VL: also on 256-bit registers)
  bool amx_bf16 = false;  // usable: CPU has it and the OS granted tile state (Linux arch_prctl)
  bool neon = false;
  std::string describe() const;
};

// Detected once; MCPM_DISABLE_AMX=1 / MCPM_DISABLE_AVX512=1 / MCPM_DISABLE_AVX2=1 turn features off (for
// testing fallbacks; AVX2 also turns off everything wider).
const CpuFeatures& cpu_features();

}  // namespace mcpm
