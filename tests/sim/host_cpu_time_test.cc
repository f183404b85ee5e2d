// SimCosts::host_cpu_time: a kernel's virtual clock also moves on by the host CPU time its
// turns take.
#include <gtest/gtest.h>

#include <chrono>

#include "sim_test_util.h"

namespace mk_sim_test {
namespace {

constexpr auto kWork = 2ms;

/// Keeps the host CPU busy for at least kWork of the host's steady clock.
void work() {
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < kWork) {
  }
}

/// How far kernel 0's virtual clock moved across work() done inside one of its tasks.
std::chrono::nanoseconds virtual_time_of_work(bool host_cpu_time) {
  mk::SimulationOptions options = small_machine(2);
  options.costs.host_cpu_time = host_cpu_time;
  auto sim = create(options);
  if (!sim) return std::chrono::nanoseconds(-1);
  auto moved = sim->run(0, [](mk::Kernel& k) -> mk::Task<std::chrono::nanoseconds> {
    const mk::Instant before = k.now();
    work();
    // The turn ends here; the next one starts where the charged turn left the clock.
    co_await k.yield();
    co_return k.now() - before;
  });
  EXPECT_TRUE(moved.ok());
  return moved.ok() ? *moved : std::chrono::nanoseconds(-1);
}

TEST(HostCpuTime, WorkInATurnMovesTheKernelsClockOnOnlyWhenCharged) {
  EXPECT_GE(virtual_time_of_work(true), kWork);
  const auto uncharged = virtual_time_of_work(false);
  EXPECT_GE(uncharged, 0ns);
  EXPECT_LT(uncharged, kWork);
}

}  // namespace
}  // namespace mk_sim_test
