// The progress line of the data commands is core's (core/progress.h); the names stay usable here.
#pragma once
#include "core/progress.h"

namespace mcpm::data {
using mcpm::human_bytes;
using mcpm::human_count;
using mcpm::ProgressBar;
}  // namespace mcpm::data
