// Cores come and go in the middle of ordered-broadcast load, over many seeds with random
// stalls and delays: System::add_kernel starts a kernel and a member asks for its join; later
// another member leaves and System::remove_kernel takes it offline. Every kernel still
// online ends with the same replica and the same order.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <utility>
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

constexpr std::size_t kBooted = 6;
constexpr std::uint32_t kProposalsPerKernel = 10;

/// Six of the machine's eight cores at boot, with random stalls and delays among them.
mk::SimulationOptions six_of_eight() {
  mk::RandomFaultPlan faults;
  faults.end = 300us;
  faults.stalls = 3;
  faults.delays = 3;
  mk::SimulationOptions options = mk::test::eight_kernels(faults);
  options.kernels = kBooted;
  return options;
}

/// Proposes kProposalsPerKernel updates from `k`, one at a time, numbered from `first`;
/// counts the successes.
mk::Task<void> propose_all(mk::Kernel& k, mk::Replicated<Ledger> ledger, std::uint64_t seed,
                           std::uint32_t first, std::shared_ptr<std::size_t> succeeded) {
  std::mt19937_64 random(seed * 131 + k.id() + first);
  for (std::uint32_t n = first; n < first + kProposalsPerKernel; ++n) {
    Ledger::Op op{k.id(), n, static_cast<std::uint32_t>(random() % 16),
                  static_cast<std::int32_t>(random() % 100) + 1};
    auto outcome = co_await ledger.propose(k, op);
    if (outcome) ++*succeeded;
  }
}

mk::Result<void> hotplug_scenario(mk::Simulation& sim) {
  const std::uint64_t seed = sim.options().seed;
  mk::ReplicaOptions options;
  options.protocol = mk::Protocol::ordered;
  options.route = mk::test::route_for(seed);
  options.record_history = true;
  auto ledger = mk::Replicated<Ledger>::create(sim.system(), Ledger{}, options);
  if (!ledger) return std::move(ledger).error();

  auto succeeded = std::make_shared<std::size_t>(0);
  for (mk::KernelId id = 0; id < kBooted; ++id) {
    auto spawned = sim.spawn(id, [ledger = *ledger, seed, succeeded](mk::Kernel& k) {
      return propose_all(k, ledger, seed, 1, succeeded);
    });
    if (!spawned) return spawned;
  }
  // The core comes online after a seeded share of the load.
  if (auto ran = sim.run_for(std::chrono::microseconds(seed % 40)); !ran) return ran;
  std::set<mk::CoreId> used;
  for (mk::KernelId id = 0; id < kBooted; ++id)
    used.insert(sim.system().core_of(id).value());
  mk::CoreId spare = 0;
  while (used.count(spare) != 0)
    ++spare;
  auto added = sim.system().add_kernel(spare);
  if (!added) return std::move(added).error();
  const mk::KernelId joiner = *added;

  auto joined = std::make_shared<mk::Result<void>>(mk::error(mk::Errc::internal, "not run"));
  auto spawned = sim.spawn(static_cast<mk::KernelId>(seed % kBooted),
                           [ledger = *ledger, joiner, joined](mk::Kernel& k) -> mk::Task<void> {
                             *joined = co_await ledger.join(k, joiner);
                           });
  if (!spawned) return spawned;
  if (auto idle = sim.run_until_idle(10s); !idle) return idle;
  if (!*joined) return mk::error(joined->error().code, "join: " + joined->error().describe());
  // The new member proposes too.
  auto more = sim.run(joiner, [ledger = *ledger, seed, succeeded](mk::Kernel& k) {
    return propose_all(k, ledger, seed, 1, succeeded);
  });
  if (!more) return more;

  // A member other than kernel 0 leaves while the rest propose again, then goes offline.
  const auto leaver = static_cast<mk::KernelId>(1 + seed % (kBooted - 1));
  for (mk::KernelId id = 0; id <= joiner; ++id) {
    if (id == leaver) continue;
    auto again = sim.spawn(id, [ledger = *ledger, seed, succeeded](mk::Kernel& k) {
      return propose_all(k, ledger, seed, 1 + kProposalsPerKernel, succeeded);
    });
    if (!again) return again;
  }
  auto left = std::make_shared<mk::Result<void>>(mk::error(mk::Errc::internal, "not run"));
  auto leaving = sim.spawn(0, [ledger = *ledger, leaver, left](mk::Kernel& k) -> mk::Task<void> {
    *left = co_await ledger.leave(k, leaver);
  });
  if (!leaving) return leaving;
  if (auto idle = sim.run_until_idle(10s); !idle) return idle;
  if (!*left) return mk::error(left->error().code, "leave: " + left->error().describe());
  if (auto removed = sim.system().remove_kernel(leaver); !removed) return removed;
  if (auto idle = sim.run_until_idle(10s); !idle) return idle;

  // Round one on every booted kernel and the joiner; round two on all but the leaver.
  const std::size_t expected = (2 * kBooted + 1) * kProposalsPerKernel;
  if (*succeeded != expected) {
    return mk::error(mk::Errc::internal, std::to_string(*succeeded) + " of " +
                                             std::to_string(expected) + " proposals succeeded");
  }
  auto first = mk::test::replica_of(sim, *ledger, 0);
  if (!first) return std::move(first).error();
  auto full = mk::test::history_of(sim, *ledger, 0);
  if (!full) return std::move(full).error();
  if (full->size() != expected) {
    return mk::error(mk::Errc::internal, "kernel 0 applied " + std::to_string(full->size()) +
                                             " of " + std::to_string(expected) + " updates");
  }
  for (mk::KernelId id = 1; id <= joiner; ++id) {
    if (id == leaver) continue;
    auto replica = mk::test::replica_of(sim, *ledger, id);
    if (!replica) return std::move(replica).error();
    if (replica->balances != first->balances || replica->digest != first->digest) {
      return mk::error(mk::Errc::internal,
                       "kernel " + std::to_string(id) + "'s replica differs from kernel 0's");
    }
    auto history = mk::test::history_of(sim, *ledger, id);
    if (!history) return std::move(history).error();
    // The joiner applied a suffix of kernel 0's order: what came after its copy of the state.
    const bool suffix = history->size() <= full->size() &&
                        std::equal(history->begin(), history->end(), full->end() - history->size(),
                                   [](const mk::OpId& a, const mk::OpId& b) {
                                     return a.origin == b.origin && a.number == b.number;
                                   });
    if (!suffix || (id != joiner && history->size() != full->size())) {
      return mk::error(mk::Errc::internal,
                       "kernel " + std::to_string(id) + " applied another order than kernel 0");
    }
  }
  return {};
}

TEST(HotplugSeeds, KernelsAddedAndRemovedUnderLoadKeepOneOrder) {
  auto report = mk::run_seeds({.seeds = mk::test::scaled(300), .test_name = current_test()},
                              six_of_eight(), hotplug_scenario);
  EXPECT_TRUE(report.ok()) << report.describe();
}

}  // namespace
