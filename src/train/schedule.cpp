// Learning-rate schedules (formulas in schedule.h).
#include "train/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.h"

namespace mcpm::train {

ScheduleKind parse_schedule_kind(const std::string& name) {
  if (name == "wsd-exp" || name == "wsd") return ScheduleKind::WsdExp;
  if (name == "wsd-linear") return ScheduleKind::WsdLinear;
  if (name == "cosine") return ScheduleKind::Cosine;
  if (name == "constant") return ScheduleKind::Constant;
  fail("unknown schedule '{}' (expected wsd-exp, wsd-linear, cosine or constant)", name);
}

const char* schedule_kind_name(ScheduleKind k) {
  switch (k) {
    case ScheduleKind::WsdExp: return "wsd-exp";
    case ScheduleKind::WsdLinear: return "wsd-linear";
    case ScheduleKind::Cosine: return "cosine";
    case ScheduleKind::Constant: return "constant";
  }
  return "?";
}

ScheduleConfig validated(ScheduleConfig c) {
  MCPM_CHECK(c.lr > 0 && std::isfinite(c.lr), "learning rate must be positive (got {})", c.lr);
  MCPM_CHECK(c.total >= 1, "the number of steps must be at least 1 (got {})", c.total);
  MCPM_CHECK(c.warmup >= 0 && c.warmup <= c.total, "warmup {} must be in [0, steps = {}]", c.warmup, c.total);
  if (c.kind == ScheduleKind::WsdExp || c.kind == ScheduleKind::WsdLinear) {
    MCPM_CHECK(c.decay >= 0 && c.decay <= c.total - c.warmup, "decay length {} must be in [0, steps - warmup = {}]",
               c.decay, c.total - c.warmup);
  }
  if (c.kind == ScheduleKind::WsdExp) {
    MCPM_CHECK(c.drop_rate > 0 && c.drop_rate < 1, "drop rate must be in (0, 1) (got {})", c.drop_rate);
    if (c.half_life <= 0 && c.decay > 0) {
      MCPM_CHECK(c.min_lr_ratio > 0 && c.min_lr_ratio < 1, "final lr ratio must be in (0, 1) (got {})", c.min_lr_ratio);
      // H = D / log_{1/r}(eta / eta_min): with r = 0.5 this is D / log2(eta / eta_min).
      c.half_life = double(c.decay) / (std::log(1.0 / c.min_lr_ratio) / std::log(1.0 / c.drop_rate));
    }
  }
  return c;
}

double lr_at(const ScheduleConfig& c, int64_t s) {
  const double eta = c.lr;
  if (s < c.warmup) return eta * double(s) / double(c.warmup);
  switch (c.kind) {
    case ScheduleKind::Constant: return eta;
    case ScheduleKind::WsdExp: {
      const int64_t T = c.total - c.decay;
      if (c.decay == 0 || s < T) return eta;
      const double H = c.half_life > 0 ? c.half_life : 1.0;
      return eta * std::pow(c.drop_rate, double(s - T) / H);
    }
    case ScheduleKind::WsdLinear: {
      const int64_t T = c.total - c.decay;
      if (c.decay == 0 || s <= T) return eta;
      return eta * (0.1 + 0.9 * std::max(double(c.total - s) / double(c.decay), 0.0));
    }
    case ScheduleKind::Cosine: {
      const double span = double(c.total - c.warmup);
      const double p = span > 0 ? std::clamp(double(s - c.warmup) / span, 0.0, 1.0) : 1.0;
      return std::max(0.1 * eta, eta * (0.1 + 0.45 * (1.0 + std::cos(std::numbers::pi * p))));
    }
  }
  return eta;
}

int64_t decay_start(const ScheduleConfig& c) {
  switch (c.kind) {
    case ScheduleKind::WsdExp: return c.decay > 0 ? c.total - c.decay + 1 : c.total + 1;
    case ScheduleKind::WsdLinear: return c.decay > 0 ? c.total - c.decay + 1 : c.total + 1;
    case ScheduleKind::Cosine: return c.warmup + 1;
    case ScheduleKind::Constant: return c.total + 1;
  }
  return c.total + 1;
}

}  // namespace mcpm::train
