// Progress line for long jobs (see progress.h).
#include "core/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

#include <fmt/format.h>

#include "core/timer.h"

namespace mcpm {

std::string human_count(double n) {
  if (n >= 1e9) return fmt::format("{:.2f}G", n / 1e9);
  if (n >= 1e6) return fmt::format("{:.2f}M", n / 1e6);
  if (n >= 1e3) return fmt::format("{:.1f}k", n / 1e3);
  return fmt::format("{:.0f}", n);
}

std::string human_bytes(double n) {
  if (n >= 1024.0 * 1024 * 1024) return fmt::format("{:.2f} GiB", n / (1024.0 * 1024 * 1024));
  if (n >= 1024.0 * 1024) return fmt::format("{:.1f} MiB", n / (1024.0 * 1024));
  if (n >= 1024.0) return fmt::format("{:.1f} KiB", n / 1024.0);
  return fmt::format("{:.0f} B", n);
}

ProgressBar::ProgressBar(std::string label, uint64_t total, std::string unit, bool enabled)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), enabled_(enabled), tty_(isatty(2) != 0),
      t0_(now_seconds()) {}

std::string ProgressBar::render(uint64_t done, const std::string& extra) const {
  const double frac = total_ ? std::min(1.0, double(done) / double(total_)) : 1.0;
  const double dt = now_seconds() - t0_;
  const double rate = dt > 0 ? double(done) / dt : 0.0;
  const double eta = rate > 0 && total_ > done ? double(total_ - done) / rate : 0.0;
  constexpr int kWidth = 24;
  const int fill = int(frac * kWidth);
  std::string bar(size_t(fill), '#');
  bar.resize(kWidth, '.');
  auto amount = [&](double x) { return unit_ == "B" ? human_bytes(x) : human_count(x) + " " + unit_; };
  std::string s = fmt::format("{} [{}] {:5.1f}% {}/{} | {}/s | ETA {:.0f}s", label_, bar, 100.0 * frac, amount(double(done)),
                              amount(double(total_)), amount(rate), eta);
  if (!extra.empty()) s += " | " + extra;
  return s;
}

void ProgressBar::update(uint64_t done, const std::string& extra) {
  if (!enabled_) return;
  last_done_ = done;
  const double now = now_seconds();
  if (tty_) {
    if (now - last_draw_ < 0.1) return;
    last_draw_ = now;
    std::fprintf(stderr, "\r%s\033[K", render(done, extra).c_str());
    std::fflush(stderr);
  } else {
    const int decile = total_ ? int(10.0 * double(done) / double(total_)) : 10;
    if (decile == last_decile_) return;
    last_decile_ = decile;
    std::fprintf(stderr, "%s\n", render(done, extra).c_str());
  }
}

void ProgressBar::finish(const std::string& extra) {
  if (!enabled_) return;
  const std::string s = render(total_ ? total_ : last_done_, extra);
  std::fprintf(stderr, tty_ ? "\r%s\033[K\n" : "%s\n", s.c_str());
}

}  // namespace mcpm
