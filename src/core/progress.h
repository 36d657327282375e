// A progress line on stderr for long jobs (data commands, loading a large model): done/total, rate,
// ETA. Redrawn in place on a terminal; one line per 10% otherwise (logs stay short).
#pragma once
#include <cstdint>
#include <string>

namespace mcpm {

class ProgressBar {
 public:
  // total: units of work (e.g. input bytes); unit: how to print them ("B" uses KiB/MiB).
  ProgressBar(std::string label, uint64_t total, std::string unit = "B", bool enabled = true);
  // done: units finished so far; extra: appended text (e.g. "1.2M tokens").
  void update(uint64_t done, const std::string& extra = "");
  void finish(const std::string& extra = "");

 private:
  std::string render(uint64_t done, const std::string& extra) const;
  std::string label_, unit_;
  uint64_t total_;
  bool enabled_, tty_;
  double t0_, last_draw_ = 0;
  int last_decile_ = -1;
  uint64_t last_done_ = 0;
};

std::string human_count(double n);  // 1.2k, 3.4M
std::string human_bytes(double n);  // 12.3 MiB

}  // namespace mcpm
