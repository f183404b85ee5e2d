// The cache-line size of this machine, as the channel rings lay out their slots.
#pragma once

#include <cstddef>

namespace mk::transport {

/// The line size assumed when neither sysconf nor /sys reports one: x86-64's and most ARM
/// cores'. The one place in mk where this number is written down.
inline constexpr std::size_t kFallbackLineSize = 64;

/// The L1 data cache line size from sysconf, else from /sys, else kFallbackLineSize. Values
/// that are not a power of two between kMinLineSize and kMaxLineSize count as unreported.
/// Detected once per process.
std::size_t detected_line_size();

}  // namespace mk::transport
