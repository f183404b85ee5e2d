// What the round-trip probes share: the checks of the pair they are asked to measure, pinning a
// probe thread, how long it polls before it yields, and the summary of what it timed.
#pragma once

#include <fmt/format.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <string_view>
#include <vector>

#include "mk/core_id.h"
#include "mk/latency.h"
#include "mk/result.h"
#include "mk/skb.h"

namespace mk::transport {

/// Polls between yields while waiting: long enough that an answer from another core is caught
/// without a syscall, short enough that a probe thread sharing its core lets the other run.
inline constexpr int kPollsPerYield = 256;

/// Why `skb` cannot measure `what` between cores `a` and `b` with `round_trips` timed round
/// trips, if it cannot: not the live machine (unavailable), a core that is not usable, one core
/// twice, or no round trips (invalid_argument).
inline Result<void> check_probe_pair(const Skb& skb, CoreId a, CoreId b, std::size_t round_trips,
                                     std::string_view what) {
  if (!skb.is_live()) {
    return error(
        Errc::unavailable,
        fmt::format("{} is measured on the live machine only, not the {}", what, skb.origin()));
  }
  for (CoreId core : {a, b}) {
    if (!skb.is_usable(core)) {
      return error(Errc::invalid_argument,
                   fmt::format("cannot measure {} on core {}: it is not usable", what, core));
    }
  }
  if (a == b) return error(Errc::invalid_argument, fmt::format("{} of core {} to itself", what, a));
  if (round_trips == 0) {
    return error(Errc::invalid_argument, "LatencyProbeOptions::round_trips must be at least 1");
  }
  return {};
}

/// Pins the calling probe thread to `core`.
inline Result<void> pin_probe_thread(CoreId core) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  if (int rc = pthread_setaffinity_np(pthread_self(), sizeof set, &set); rc != 0) {
    return error(Errc::io_error,
                 fmt::format("cannot pin a probe thread to core {}: {}", core, std::strerror(rc)));
  }
  return {};
}

/// The measured round trip between cores `a` and `b` from its timed `samples` (at least one;
/// sorted here): their minimum and median.
inline CoreLatency summarize_round_trips(
    CoreId a, CoreId b, std::vector<std::chrono::steady_clock::duration>& samples) {
  std::sort(samples.begin(), samples.end());
  CoreLatency latency;
  latency.a = a;
  latency.b = b;
  latency.min = std::chrono::duration_cast<std::chrono::nanoseconds>(samples.front());
  latency.median =
      std::chrono::duration_cast<std::chrono::nanoseconds>(samples[samples.size() / 2]);
  latency.source = FactSource::measured;
  return latency;
}

}  // namespace mk::transport
