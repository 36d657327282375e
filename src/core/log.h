// Logging to stderr through spdlog. Verbosity is set once by the front end (CLI -v / -q).
#pragma once
#include <spdlog/spdlog.h>

namespace mcpm {
enum class LogLevel { Quiet, Info, Debug };
void set_log_level(LogLevel level);
}  // namespace mcpm

#define MCPM_LOG_INFO(...) ::spdlog::info(__VA_ARGS__)
#define MCPM_LOG_WARN(...) ::spdlog::warn(__VA_ARGS__)
#define MCPM_LOG_DEBUG(...) ::spdlog::debug(__VA_ARGS__)
