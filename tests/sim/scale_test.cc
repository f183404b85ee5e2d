// Hundreds of kernels on a 96-core topology, every kernel calling every other.
#include <gtest/gtest.h>

#include <vector>

#include "sim_test_util.h"
#include "test_scale.h"

namespace mk_sim_test {
namespace {

/// Every kernel calls its next `peers` kernels (all the others by default) once; returns how
/// many replies were right.
std::size_t exchange(mk::Simulation& sim, std::size_t peers = 0) {
  handle_bump_everywhere(sim);
  const std::size_t n = sim.system().size();
  if (peers == 0) peers = n - 1;
  std::size_t right = 0;  // The simulation runs on this thread only.
  for (mk::KernelId id = 0; id < n; ++id) {
    EXPECT_TRUE(sim.spawn(id,
                          [&right, n, peers](mk::Kernel& k) -> mk::Task<void> {
                            for (std::size_t step = 1; step <= peers; ++step) {
                              const auto to = static_cast<mk::KernelId>((k.id() + step) % n);
                              auto reply = co_await k.call(to, Bump{k.id()});
                              if (reply.ok() && reply->value == k.id() + to) ++right;
                            }
                          })
                    .ok());
  }
  auto idle = sim.run_until_idle(10s);
  EXPECT_TRUE(idle.ok()) << idle.error().describe();
  return right;
}

TEST(Scale, NinetySixKernelsOnTheNinetySixCoreMachine) {
  mk::SimulationOptions options;
  options.topology = topology_file("96em64t-4n4d3ca2co-pci.xml");
  options.kernels = 96;
  auto sim = create(options);
  ASSERT_TRUE(sim);
  // All to all; under the sanitizers each kernel calls its next 32, to stay within seconds.
  const std::size_t peers = mk::test::kScale == 10 ? 95 : 32;
  EXPECT_EQ(exchange(*sim, peers), 96u * peers);
  EXPECT_TRUE(sim->shutdown().ok());
}

TEST(Scale, TwoKernelsPerCoreOnTheNinetySixCoreMachine) {
  // All to all in optimised builds; under the sanitizers, which run this 10 to 20x slower,
  // each kernel calls its next 12 (across cores, dies and NUMA nodes all the same).
  constexpr std::size_t kKernels = 192;
  const std::size_t peers = mk::test::kScale == 10 ? kKernels - 1 : 12;
  mk::SimulationOptions options;
  options.topology = topology_file("96em64t-4n4d3ca2co-pci.xml");
  options.kernels = kKernels;
  auto sim = create(options);
  ASSERT_TRUE(sim);
  EXPECT_EQ(*sim->system().core_of(96), *sim->system().core_of(0));
  EXPECT_EQ(exchange(*sim, peers), kKernels * peers);
}

}  // namespace
}  // namespace mk_sim_test
