// A kernel crashing while agreement is under way: every proposal on the survivors completes or
// fails within a bounded virtual time, and the survivors' replicas never diverge.
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "mk/replicated.h"
#include "mk/seed_harness.h"
#include "mk/simulation.h"
#include "sim_machines.h"
#include "test_scale.h"

namespace {

using namespace std::chrono_literals;
using mk::test::current_test;
using mk::test::Ledger;

constexpr std::size_t kKernels = 8;
constexpr std::uint32_t kProposalsPerKernel = 8;
/// A proposal that has not completed by then fails with timed_out.
constexpr mk::Duration kTimeout = 200us;

/// Random stalls; the crash itself is scheduled once the object exists.
mk::SimulationOptions with_stalls() {
  mk::RandomFaultPlan plan;
  plan.end = 300us;
  plan.stalls = 2;
  return mk::test::eight_kernels(plan);
}

mk::Result<void> crash_scenario(mk::Simulation& sim, mk::Protocol protocol) {
  const std::uint64_t seed = sim.options().seed;
  mk::ReplicaOptions options;
  options.protocol = protocol;
  options.route = mk::test::route_for(seed);
  options.timeout = kTimeout;
  auto ledger = mk::Replicated<Ledger>::create(sim.system(), Ledger{}, options);
  if (!ledger) return std::move(ledger).error();

  // Shared with the tasks, which may outlive a scenario that failed early.
  // One kernel other than kernel 0 (which reads the results) crashes in the next 100 µs,
  // while the proposals below are under way; the seed picks which and when.
  std::mt19937_64 fate(seed);
  const mk::KernelId victim = 1 + fate() % (kKernels - 1);
  const auto when = sim.now() + std::chrono::nanoseconds(fate() % 100'000);
  if (auto crashed = sim.crash(victim, when); !crashed) return crashed;

  auto completed = std::make_shared<std::vector<std::size_t>>(kKernels, 0);
  for (mk::KernelId id = 0; id < kKernels; ++id) {
    auto spawned =
        sim.spawn(id, [ledger = *ledger, seed, completed](mk::Kernel& k) -> mk::Task<void> {
          std::mt19937_64 random(seed * 31 + k.id());
          for (std::uint32_t n = 1; n <= kProposalsPerKernel; ++n) {
            Ledger::Op op{k.id(), n, static_cast<std::uint32_t>(random() % 16), 1};
            auto outcome = co_await ledger.propose(k, op);
            ++(*completed)[k.id()];
            if (!outcome && outcome.error().code != mk::Errc::timed_out &&
                outcome.error().code != mk::Errc::conflict) {
              ADD_FAILURE() << "unexpected error: " << outcome.error().describe();
            }
          }
        });
    if (!spawned) return spawned;
  }
  // Bounded: every survivor's proposals end well within this much virtual time.
  if (auto idle = sim.run_until_idle(1s); !idle) {
    return mk::error(idle.error().code, "the system did not settle: " + idle.error().describe());
  }
  for (mk::KernelId id = 0; id < kKernels; ++id) {
    if (!sim.crashed(id) && (*completed)[id] != kProposalsPerKernel) {
      return mk::error(mk::Errc::internal, "kernel " + std::to_string(id) + " survived but only " +
                                               std::to_string((*completed)[id]) +
                                               " of its proposals ended");
    }
  }
  std::optional<Ledger> reference;
  for (mk::KernelId id = 0; id < kKernels; ++id) {
    if (sim.crashed(id)) continue;
    auto replica = mk::test::replica_of(sim, *ledger, id);
    if (!replica) return std::move(replica).error();
    if (!reference) {
      reference = *replica;
    } else if (replica->balances != reference->balances ||
               (protocol == mk::Protocol::ordered && replica->digest != reference->digest)) {
      return mk::error(mk::Errc::internal,
                       "surviving kernel " + std::to_string(id) + " diverged from the others");
    }
  }
  return {};
}

TEST(ReplicaCrash, OrderedBroadcastSurvivorsSettleAndAgree) {
  auto report =
      mk::run_seeds({.seeds = mk::test::scaled(300), .test_name = current_test()}, with_stalls(),
                    [](mk::Simulation& sim) { return crash_scenario(sim, mk::Protocol::ordered); });
  EXPECT_TRUE(report.ok()) << report.describe();
}

TEST(ReplicaCrash, TwoPhaseCommitSurvivorsSettleAndAgree) {
  auto report = mk::run_seeds(
      {.seeds = mk::test::scaled(300), .test_name = current_test()}, with_stalls(),
      [](mk::Simulation& sim) { return crash_scenario(sim, mk::Protocol::two_phase); });
  EXPECT_TRUE(report.ok()) << report.describe();
}

}  // namespace
