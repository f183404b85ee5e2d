// The replicated object of the suites that need one and do not care which: a counter.
#pragma once

#include <cstdint>

namespace mk::bench {

/// A counter whose additions commute, so every protocol suits it. Outside any anonymous
/// namespace, since mk's task frames that hold it have external linkage.
struct BenchCounter {
  /// Adds `add`.
  struct Op {
    std::int64_t add;
  };
  using Result = std::int64_t;
  std::int64_t value = 0;

  Result apply(const Op& op) { return value += op.add; }
};

}  // namespace mk::bench
