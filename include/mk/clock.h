// mk::Clock: where kernels read the time.
#pragma once

#include <chrono>

namespace mk {

/// A span of time on a kernel's clock.
using Duration = std::chrono::nanoseconds;

/// A point on a kernel's clock. It uses steady_clock's type so that the threaded executor can
/// hand deadlines to the operating system (CLOCK_MONOTONIC) unchanged; a simulated clock
/// counts virtual time in the same type.
using Instant = std::chrono::steady_clock::time_point;

/// The source of time for kernels. Kernel code never reads the wall clock itself
/// (docs/architecture.md, principle 5): timers, call deadlines and idle budgets all come from the
/// executor's Clock, so a simulator can substitute virtual time.
class Clock {
 public:
  virtual ~Clock() = default;
  /// The current time. Must never go backwards.
  virtual Instant now() const noexcept = 0;
};

/// The real monotonic clock (CLOCK_MONOTONIC), used by the threaded executor.
class SteadyClock final : public Clock {
 public:
  /// std::chrono::steady_clock::now().
  Instant now() const noexcept override { return std::chrono::steady_clock::now(); }
};

}  // namespace mk
