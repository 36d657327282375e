#include "core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace mcpm {

void set_log_level(LogLevel level) {
  static auto logger = [] {
    auto l = spdlog::stderr_color_mt("minicpm");
    l->set_pattern("%^[%L]%$ %v");
    spdlog::set_default_logger(l);
    return l;
  }();
  switch (level) {
    case LogLevel::Quiet: logger->set_level(spdlog::level::warn); break;
    case LogLevel::Info: logger->set_level(spdlog::level::info); break;
    case LogLevel::Debug: logger->set_level(spdlog::level::debug); break;
  }
}

}  // namespace mcpm
