// Determinism: one seed gives one sequence of events; different seeds give different ones.
#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "sim_test_util.h"

namespace mk_sim_test {
namespace {

struct WorkloadRun {
  std::uint64_t hash;
  std::uint64_t events;
  std::vector<std::string> lines;
  std::vector<mk::KernelId> arrival_order;  ///< Senders in the order kernel 0 saw their Adds.
  std::uint64_t checksum;
};

/// Eight kernels call each other concurrently; kernel 0 notes in which order its callers came.
WorkloadRun run_workload(std::uint64_t seed) {
  auto options = small_machine(8, seed);
  options.trace = true;
  auto sim = create(options);
  if (!sim) return {};
  WorkloadRun run{};
  handle_bump_everywhere(*sim);
  auto added = sim->system().run(0, [&run](mk::Kernel& k) -> mk::Task<bool> {
    co_return k
        .handle<Add>([&run](const Add& add, const mk::MessageContext& context) {
          run.arrival_order.push_back(context.from);
          return Value{add.value};
        })
        .ok();
  });
  EXPECT_TRUE(added.ok() && *added);
  std::uint64_t checksum = 0;
  for (mk::KernelId id = 1; id < 8; ++id) {
    EXPECT_TRUE(sim->spawn(id,
                           [&checksum](mk::Kernel& k) -> mk::Task<void> {
                             for (std::uint64_t round = 0; round < 4; ++round) {
                               auto sum = co_await k.call(0, Add{k.id() * 100 + round});
                               auto bump = co_await k.call((k.id() + round) % 8, Bump{round});
                               if (sum.ok() && bump.ok()) checksum += sum->value + bump->value;
                             }
                           })
                    .ok());
  }
  EXPECT_TRUE(sim->run_until_idle(1s).ok());
  run.hash = sim->trace_hash();
  run.events = sim->trace_events();
  run.lines = sim->trace();
  run.checksum = checksum;
  EXPECT_TRUE(sim->shutdown().ok());
  return run;
}

TEST(Determinism, TheSameSeedGivesTheSameTrace) {
  const WorkloadRun first = run_workload(42);
  const WorkloadRun second = run_workload(42);
  EXPECT_GT(first.events, 100u);
  EXPECT_EQ(first.hash, second.hash);
  EXPECT_EQ(first.lines, second.lines);
  EXPECT_EQ(first.arrival_order, second.arrival_order);
  EXPECT_EQ(first.arrival_order.size(), 7u * 4u);
}

TEST(Determinism, DifferentSeedsGiveDifferentSchedules) {
  std::set<std::uint64_t> hashes;
  std::set<std::vector<mk::KernelId>> orders;
  std::set<std::uint64_t> checksums;
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    const WorkloadRun run = run_workload(seed);
    hashes.insert(run.hash);
    orders.insert(run.arrival_order);
    checksums.insert(run.checksum);
  }
  EXPECT_EQ(hashes.size(), 8u);
  EXPECT_GT(orders.size(), 1u);     // Kernel 0 saw its callers in more than one order.
  EXPECT_EQ(checksums.size(), 1u);  // The answers do not depend on the schedule.
}

}  // namespace
}  // namespace mk_sim_test
