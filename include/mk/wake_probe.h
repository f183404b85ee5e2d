// Measuring what a wake costs with each wake mechanism, for the SKB.
#pragma once

#include <chrono>
#include <cstddef>
#include <vector>

#include "mk/latency_probe.h"
#include "mk/result.h"
#include "mk/skb.h"
#include "mk/wake.h"

namespace mk {

/// How to measure one mechanism.
struct WakeProbeOptions {
  std::size_t wakes = 200;  ///< Timed wakes per mechanism.
  std::size_t warmup = 20;  ///< Untimed wakes first.
  /// How long the waker waits, once the sleeper said it is about to block, before it notifies:
  /// enough for the sleeper to be blocked in the OS, so that each wake is a real one.
  std::chrono::microseconds pause{150};
};

/// The wake cost of every mechanism this machine allows to kernels that are threads (the
/// others are left out): a thread pinned to one usable core sleeps in the waiter a kernel
/// would use, and a thread on another (the same one on a single-core machine) notifies it,
/// `wakes` times; a cost is the time from the notification to the sleeper running. The live
/// machine only.
Result<std::vector<WakeCost>> measure_wake_costs(const Skb& skb,
                                                 const WakeProbeOptions& options = {});

/// Adds this machine's wake costs to `skb`: from its cache file (the latency cache,
/// mk/latency_cache.h) when that has them and `setup.remeasure` is false, otherwise measured
/// now and cached. `setup.probe` is not used. A malformed cache file is an error naming it.
Result<LatencyOrigin> load_or_measure_wake_costs(Skb& skb, const LatencySetup& setup,
                                                 const WakeProbeOptions& options = {});

}  // namespace mk
