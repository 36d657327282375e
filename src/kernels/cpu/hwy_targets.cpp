// Highway target hooks: which targets the portable kernels were compiled for, which one they
// dispatch to, and forcing one (tests run every kernel on every target this CPU supports).
// MCPM_DISABLE_AVX512 (read by cpu_features) also keeps Highway off its AVX-512 targets.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/hwy_targets.cpp"
#include "kernels/cpu/hwy_config.h"
// clang-format off
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
// clang-format on
#include "core/cpu_features.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/internal.h"

HWY_BEFORE_NAMESPACE();
namespace mcpm::cpu {
namespace HWY_NAMESPACE {
const char* TargetName() { return hwy::TargetName(HWY_TARGET); }
}  // namespace HWY_NAMESPACE
}  // namespace mcpm::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace mcpm::cpu {

HWY_EXPORT(TargetName);

bool configure_hwy_targets() {
  static const bool done = [] {
#if HWY_ARCH_X86
    if (!cpu_features().avx512f) hwy::DisableTargets(HWY_AVX3 | HWY_AVX3_DL);
#endif
    return true;
  }();
  return done;
}

namespace {
const bool kConfiguredAtStartup = configure_hwy_targets();
}  // namespace

const char* hwy_current_target_name() {
  configure_hwy_targets();
  return HWY_DYNAMIC_DISPATCH(TargetName)();
}
const char* hwy_target_name() { return hwy_current_target_name(); }

std::vector<int64_t> hwy_targets() {
  configure_hwy_targets();
  std::vector<int64_t> out;
  for (int64_t t = hwy::SupportedTargets() & HWY_TARGETS; t != 0; t &= t - 1) out.push_back(t & -t);
  return out;
}

void hwy_force_target(int64_t target) { hwy::SetSupportedTargetsForTest(target); }

}  // namespace mcpm::cpu
#endif
