// Membership changes meet failures, over many seeds with stalls and delays, under every
// protocol, while the members propose:
//   - the coordinator of a join or leave crashes during it (sometimes mid-turn), or its
//     target does, or another member: the change completes on the next view, or fails with a
//     clear error when its target failed, and the survivors agree on one view and one state;
//   - a phase that times out (a member stalled past the timeout) undoes the change;
//   - leave(crashed) and remove_kernel(crashed) succeed.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "invariants.h"
#include "mk/replicated.h"
#include "mk/seed_harness.h"
#include "mk/simulation.h"
#include "sim_machines.h"
#include "test_scale.h"

namespace {

using namespace std::chrono_literals;
using mk::test::current_test;
using mk::test::Ledger;
using mk::test::with_stalls_and_delays;

/// Kernels 0 to 5 are members; 6 joins; 7 never takes part.
constexpr mk::KernelId kMembers = 6;
constexpr mk::KernelId kJoiner = 6;
constexpr std::uint32_t kProposalsPerKernel = 8;
constexpr mk::Duration kTimeout = 200us;

mk::Protocol protocol_for(std::uint64_t seed) {
  static constexpr mk::Protocol kProtocols[] = {mk::Protocol::ordered, mk::Protocol::two_phase,
                                                mk::Protocol::one_phase};
  return kProtocols[(seed / 4) % 3];
}

mk::ReplicaOptions options_for(std::uint64_t seed, mk::KernelId coordinator) {
  mk::ReplicaOptions options;
  options.protocol = protocol_for(seed);
  options.route = mk::test::route_for(seed);
  options.timeout = kTimeout;
  options.record_history = true;
  for (mk::KernelId id = 0; id < kMembers; ++id)
    options.kernels.push_back(id);
  options.sequencer = coordinator;
  return options;
}

mk::Result<void> coordinator_scenario(mk::Simulation& sim) {
  const std::uint64_t seed = sim.options().seed;
  std::mt19937_64 fate(seed);
  const auto coordinator = static_cast<mk::KernelId>(fate() % kMembers);
  auto made =
      mk::Replicated<Ledger>::create(sim.system(), Ledger{}, options_for(seed, coordinator));
  if (!made) return std::move(made).error();
  const auto ledger = *made;
  const mk::Protocol protocol = ledger.options().protocol;

  // Even seeds join kernel 6, odd ones make a member leave; a member that stays asks.
  const bool join = seed % 2 == 0;
  mk::KernelId leaver = 0;
  do {
    leaver = static_cast<mk::KernelId>(fate() % kMembers);
  } while (leaver == coordinator);
  const mk::KernelId target = join ? kJoiner : leaver;
  mk::KernelId requester = 0;
  do {
    requester = static_cast<mk::KernelId>(fate() % kMembers);
  } while (requester == coordinator || requester == leaver);
  // Who crashes: mostly the coordinator, else the change's target, else another member.
  const auto pick = fate() % 4;
  mk::KernelId victim = coordinator;
  if (pick == 2) victim = target;
  if (pick == 3) {
    do {
      victim = static_cast<mk::KernelId>(fate() % kMembers);
    } while (victim == requester || victim == coordinator || victim == leaver);
  }
  const auto when = sim.now() + std::chrono::nanoseconds(fate() % 60'000);
  const auto crashed =
      (seed / 2) % 2 == 1 ? sim.crash_mid_turn(victim, when, fate() % 4) : sim.crash(victim, when);
  if (!crashed) return crashed;

  auto seen = std::make_shared<mk::test::Seen>();
  for (mk::KernelId id = 0; id < kMembers; ++id) {
    auto spawned = sim.spawn(id, [ledger, seed, seen](mk::Kernel& k) {
      return mk::test::propose_all(k, ledger, seed, kProposalsPerKernel, 2, seen);
    });
    if (!spawned) return spawned;
  }
  auto changed = std::make_shared<std::optional<mk::Result<void>>>();
  auto asked =
      sim.spawn(requester, [ledger, join, target, changed](mk::Kernel& k) -> mk::Task<void> {
        // Not `join ? co_await ... : co_await ...`: GCC 12 miscompiles co_await inside ?:.
        if (join) {
          *changed = co_await ledger.join(k, target);
        } else {
          *changed = co_await ledger.leave(k, target);
        }
      });
  if (!asked) return asked;
  if (auto idle = sim.run_until_idle(10ms); !idle) {
    return mk::error(idle.error().code, "the system did not settle: " + idle.error().describe());
  }
  if (!sim.crashed(victim)) {
    if (auto late = sim.crash(victim, sim.now()); !late) return late;
    if (auto idle = sim.run_until_idle(10ms); !idle) return idle;
  }
  if (!*changed) return mk::error(mk::Errc::internal, "the change request never ended");
  const auto& outcome = **changed;
  // A change whose target survived completes; one whose target failed may have completed
  // before, and a join of a failed kernel fails with closed.
  if (!outcome && !(victim == target && outcome.error().code == mk::Errc::closed)) {
    return mk::error(outcome.error().code, std::string(join ? "join" : "leave") + " of kernel " +
                                               std::to_string(target) +
                                               " failed: " + outcome.error().describe());
  }
  if (seen->unexpected) {
    return mk::error(mk::Errc::internal,
                     "a proposal failed unexpectedly: " + seen->unexpected->describe());
  }
  std::vector<mk::KernelId> members;
  for (mk::KernelId id = 0; id <= kJoiner; ++id) {
    if (id == victim) continue;
    if (id == kJoiner && !(join && outcome)) continue;
    if (id == leaver && !join && outcome) continue;
    members.push_back(id);
  }
  for (mk::KernelId id = 0; id < kMembers; ++id) {
    if (id != victim && seen->ended[id] != kProposalsPerKernel) {
      return mk::error(mk::Errc::internal, "kernel " + std::to_string(id) + " survived but only " +
                                               std::to_string(seen->ended[id]) +
                                               " of its proposals ended");
    }
  }
  const std::optional<mk::KernelId> joined =
      join && outcome ? std::optional<mk::KernelId>(kJoiner) : std::nullopt;
  if (auto agreed = mk::test::check_survivors(sim, ledger, members, *seen, kProposalsPerKernel,
                                              joined, nullptr);
      !agreed) {
    return agreed;
  }
  // Leaving the crashed kernel is a success at once, and so is taking it offline.
  auto left =
      sim.run(requester, [ledger, victim](mk::Kernel& k) { return ledger.leave(k, victim); });
  if (!left) return std::move(left).error();
  if (!*left) return mk::error(left->error().code, "leave(crashed): " + left->error().describe());
  if (auto removed = sim.system().remove_kernel(victim); !removed) return removed;
  if (protocol == mk::Protocol::two_phase) {
    return mk::test::check_released(sim, ledger, requester);
  }
  return {};
}

TEST(MembershipFailure, ChangesCompleteOrFailCleanlyWhenTheirCoordinatorCrashes) {
  auto report = mk::run_seeds({.seeds = mk::test::scaled(1000), .test_name = current_test()},
                              with_stalls_and_delays(), coordinator_scenario);
  EXPECT_TRUE(report.ok()) << report.describe();
}

/// A member stalls past the timeout while a join freezes the members: the join is undone, the
/// requester gets timed_out, and once the stall is over everyone carries on in the old view.
mk::Result<void> rollback_scenario(mk::Simulation& sim) {
  const std::uint64_t seed = sim.options().seed;
  std::mt19937_64 fate(seed);
  const auto coordinator = static_cast<mk::KernelId>(fate() % kMembers);
  auto made =
      mk::Replicated<Ledger>::create(sim.system(), Ledger{}, options_for(seed, coordinator));
  if (!made) return std::move(made).error();
  const auto ledger = *made;
  mk::KernelId stalled = 0;
  do {
    stalled = static_cast<mk::KernelId>(fate() % kMembers);
  } while (stalled == coordinator);
  const mk::KernelId requester = coordinator;
  if (auto stall = sim.stall(stalled, sim.now(), 3 * kTimeout); !stall) return stall;
  auto changed = std::make_shared<std::optional<mk::Result<void>>>();
  auto asked = sim.spawn(requester, [ledger, changed](mk::Kernel& k) -> mk::Task<void> {
    *changed = co_await ledger.join(k, kJoiner);
  });
  if (!asked) return asked;
  if (auto idle = sim.run_until_idle(10ms); !idle) return idle;
  if (!*changed || (*changed)->ok() || (*changed)->error().code != mk::Errc::timed_out) {
    return mk::error(mk::Errc::internal,
                     "the join should have timed out: " +
                         (*changed ? ((*changed)->ok() ? std::string("it succeeded")
                                                       : (*changed)->error().describe())
                                   : std::string("it never ended")));
  }
  // The old view, unfrozen: everyone proposes again, and agrees.
  auto seen = std::make_shared<mk::test::Seen>();
  for (mk::KernelId id = 0; id < kMembers; ++id) {
    auto spawned = sim.spawn(id, [ledger, seed, seen](mk::Kernel& k) {
      return mk::test::propose_all(k, ledger, seed, kProposalsPerKernel, 2, seen);
    });
    if (!spawned) return spawned;
  }
  if (auto idle = sim.run_until_idle(10ms); !idle) return idle;
  for (const auto& [op, outcome] : seen->outcomes) {
    if (!outcome && outcome.error().code != mk::Errc::conflict) {
      return mk::error(outcome.error().code, "after the rollback, " + mk::test::name(op) +
                                                 " failed: " + outcome.error().describe());
    }
  }
  std::vector<mk::KernelId> members;
  for (mk::KernelId id = 0; id < kMembers; ++id)
    members.push_back(id);
  return mk::test::check_survivors(sim, ledger, members, *seen, kProposalsPerKernel, std::nullopt,
                                   nullptr);
}

TEST(MembershipFailure, APhaseThatTimesOutUndoesTheChange) {
  auto report = mk::run_seeds({.seeds = mk::test::scaled(1000), .test_name = current_test()},
                              mk::test::eight_kernels({}), rollback_scenario);
  EXPECT_TRUE(report.ok()) << report.describe();
}

}  // namespace
