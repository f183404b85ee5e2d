// What mk-hwloc-probe writes to its caller: fixed-size reports, each arriving whole (a pipe
// write of at most PIPE_BUF bytes is atomic).
#pragma once

namespace mk::detail {

/// One report of the probe.
struct ProbeReport {
  char stage = 0;        ///< kProbeRefused, kProbeLoaded or kProbeFreed.
  int error_number = 0;  ///< hwloc's errno after a refusal.
};

/// hwloc refused the input (the report carries its errno).
inline constexpr char kProbeRefused = 'r';
/// hwloc accepted the input.
inline constexpr char kProbeLoaded = 'l';
/// hwloc freed what it loaded.
inline constexpr char kProbeFreed = 'f';

}  // namespace mk::detail
