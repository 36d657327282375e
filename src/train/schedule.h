// Learning-rate schedules of MiniCPM (docs/training.md, training-recipe §2). s is the 1-based index
// of the optimizer update (s = 1 .. S, S = total steps), W the warmup length, D the decay length
// and T = S - D the end of the stable phase:
//   warmup (s < W):     lr = eta * s / W
//   WSD, stable:        lr = eta                                   W <= s < T
//   WSD, exp decay:     lr = eta * r^((s - T) / H)                 T <= s <= S  (r = 0.5: H = half-life)
//   WSD, linear decay:  lr = eta * (0.1 + 0.9 * max((S - s) / D, 0))
//   cosine:             lr = max(0.1 eta, eta * (0.1 + 0.45 * (1 + cos(pi p)))),  p = (s - W) / (S - W)
//   constant:           lr = eta after warmup
#pragma once
#include <cstdint>
#include <string>

namespace mcpm::train {

enum class ScheduleKind { WsdExp, WsdLinear, Cosine, Constant };

struct ScheduleConfig {
  ScheduleKind kind = ScheduleKind::WsdExp;
  double lr = 0.01;          // eta (base learning rate, before the muP group factor)
  int64_t warmup = 0;        // W
  int64_t total = 1;         // S
  int64_t decay = 0;         // D (WSD)
  double half_life = 0;      // H in steps (WsdExp); 0 = derived from min_lr_ratio: H = D / log2(1 / ratio)
  double min_lr_ratio = 0.01;  // WsdExp without half_life: lr(S) = ratio * eta
  double drop_rate = 0.5;    // r (WsdExp)
};

ScheduleKind parse_schedule_kind(const std::string& name);  // "wsd-exp", "wsd-linear", "cosine", "constant"
const char* schedule_kind_name(ScheduleKind k);

// Checks the configuration (lengths, ratios) and fills half_life when derived; throws mcpm::Error.
ScheduleConfig validated(ScheduleConfig c);

// Learning rate of update s (1-based).
double lr_at(const ScheduleConfig& c, int64_t s);

// First step of the decay phase (T + 1 in the formulas' terms: the first s with lr < eta), S + 1 if none.
int64_t decay_start(const ScheduleConfig& c);

}  // namespace mcpm::train
