// Order statistics of latency samples.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <vector>

namespace mk::bench {

/// The clock wall-time figures are taken with.
using Clock = std::chrono::steady_clock;

/// Nanoseconds from `a` to `b`.
inline double ns_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::nano>(b - a).count();
}

/// The q-quantile (0 <= q <= 1) of `samples` by nearest rank; sorts them. 0 when empty.
inline double quantile(std::vector<double>& samples, double q) {
  if (samples.empty()) return 0.0;
  std::sort(samples.begin(), samples.end());
  auto rank = static_cast<std::size_t>(q * static_cast<double>(samples.size() - 1) + 0.5);
  return samples[std::min(rank, samples.size() - 1)];
}

/// The median of `samples`; sorts them.
inline double median(std::vector<double>& samples) {
  return quantile(samples, 0.5);
}

}  // namespace mk::bench
