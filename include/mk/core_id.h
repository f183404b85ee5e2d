// mk::CoreId: how mk names a core.
#pragma once

#include <cstdint>

namespace mk {

/// A core as the operating system numbers it: the OS index of the hwloc PU a kernel runs on,
/// the number `taskset -c` and /proc/cpuinfo use. On SMT machines each hardware thread has
/// its own CoreId; placement decides whether siblings both get kernels.
using CoreId = std::uint32_t;

}  // namespace mk
