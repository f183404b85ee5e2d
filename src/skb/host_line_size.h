// This machine's cache-line size without hwloc: the one detection mk has. The SKB falls back on
// it when hwloc does not know the L1 line, and a channel made without an SKB (ChannelOptions
// line_size 0) lays its slots out with it.
#pragma once

#include <cstddef>

namespace mk::detail {

/// The line size assumed when neither sysconf nor /sys reports one: x86-64's and most Arm64
/// cores'. The one place in mk where this number is written down.
inline constexpr std::size_t kFallbackLineSize = 64;

/// A line size the SKB takes as a fact: a power of two from 16 to 4096 (hwloc's, a facts
/// file's, the operating system's). Whether a channel can be laid out with it is the
/// transport's rule, not this one.
bool plausible_line_size(std::size_t bytes);

/// The L1 data cache line size from sysconf, else from /sys; 0 when neither reports a
/// plausible one. Detected once per process.
std::size_t reported_line_size();

/// reported_line_size(), or kFallbackLineSize when the operating system reports none.
std::size_t host_line_size();

}  // namespace mk::detail
