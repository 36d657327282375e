#include "core/cpu_features.h"

#include <cstdlib>
#include <cstring>

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace mcpm {

namespace {
bool env_set(const char* name) {
  const char* v = std::getenv(name);
  return v && *v && std::strcmp(v, "0") != 0;
}

CpuFeatures detect() {
  CpuFeatures f;
#if defined(__x86_64__)
  unsigned a, b, c, d;
  if (__get_cpuid(1, &a, &b, &c, &d)) {
    f.fma = c & (1u << 12);
    f.f16c = c & (1u << 29);
    const bool osxsave = c & (1u << 27);
    unsigned xcr0_lo = 0, xcr0_hi = 0;
    if (osxsave) __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    const bool ymm_os = (xcr0_lo & 0x6) == 0x6, zmm_os = (xcr0_lo & 0xe6) == 0xe6;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
      f.avx2 = ymm_os && (b & (1u << 5));
      f.avx512f = zmm_os && (b & (1u << 16));
      f.avx512bw = zmm_os && (b & (1u << 30));
      f.avx512vl = zmm_os && (b & (1u << 31));
      f.avx512vnni = f.avx512f && (c & (1u << 11));
      const bool amx_tile = d & (1u << 24), amx_bf16 = d & (1u << 22);
      unsigned a1, b1, c1, d1;
      if (__get_cpuid_count(7, 1, &a1, &b1, &c1, &d1)) f.avx512bf16 = f.avx512f && (a1 & (1u << 5));
      // XCR0 bits 17 (XTILECFG) and 18 (XTILEDATA): the OS manages the AMX tile state.
      if (amx_tile && amx_bf16 && (xcr0_lo & 0x60000u) == 0x60000u) {
        // Linux: ask for permission to use the AMX tile data state.
        constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
        f.amx_bf16 = syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
      }
    }
  }
  if (env_set("MCPM_DISABLE_AVX512")) f.avx512f = f.avx512bw = f.avx512vl = f.avx512bf16 = f.avx512vnni = f.amx_bf16 = false;
  if (env_set("MCPM_DISABLE_AMX")) f.amx_bf16 = false;
  if (env_set("MCPM_DISABLE_AVX2"))  // everything wider than SSE: the scalar fallbacks of kernels/weight_types.h
    f.avx2 = f.fma = f.avx512f = f.avx512bw = f.avx512vl = f.avx512bf16 = f.avx512vnni = f.amx_bf16 = false;
#elif defined(__aarch64__)
  f.neon = true;
#endif
  return f;
}
}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

std::string CpuFeatures::describe() const {
  std::string s;
  auto add = [&](bool on, const char* n) {
    if (on) s += (s.empty() ? "" : " "), s += n;
  };
  add(avx2, "AVX2");
  add(fma, "FMA");
  add(avx512f, "AVX512F");
  add(avx512bw, "AVX512BW");
  add(avx512vnni, "AVX512_VNNI");
  add(avx512bf16, "AVX512_BF16");
  add(amx_bf16, "AMX_BF16");
  add(neon, "NEON");
  return s.empty() ? "scalar" : s;
}

}  // namespace mcpm
