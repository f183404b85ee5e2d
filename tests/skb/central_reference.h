// The central core by its definition, for tests to check Skb::central_core() against.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "mk/skb.h"

namespace mk::test {

/// The core of `cores` with the lowest worst cost to the others, then the lowest total, then
/// the lowest id, computed pair by pair through the public latency() (when every pair has one)
/// or distance() queries: quadratic, for small sets.
inline CoreId central_by_definition(const Skb& skb, std::vector<CoreId> cores) {
  std::sort(cores.begin(), cores.end());
  cores.erase(std::unique(cores.begin(), cores.end()), cores.end());
  const bool by_latency = skb.has_latencies(cores);
  CoreId best = cores.front();
  std::pair best_key(std::numeric_limits<std::int64_t>::max(),
                     std::numeric_limits<std::int64_t>::max());
  for (CoreId candidate : cores) {
    std::int64_t worst = 0;
    std::int64_t total = 0;
    for (CoreId other : cores) {
      if (other == candidate) continue;
      const std::int64_t cost = by_latency ? skb.latency(candidate, other)->median.count()
                                           : skb.distance(candidate, other).value();
      worst = std::max(worst, cost);
      total += cost;
    }
    if (std::pair(worst, total) < best_key) {
      best_key = {worst, total};
      best = candidate;
    }
  }
  return best;
}

}  // namespace mk::test
