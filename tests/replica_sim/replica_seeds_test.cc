// Every agreement protocol in the simulator over many seeds, with random stalls and delays:
// replicas end identical, ordered broadcast applies one order everywhere, and two-phase commit
// never commits two conflicting proposals.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
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
using mk::test::Claims;
using mk::test::current_test;
using mk::test::Ledger;

constexpr std::size_t kKernels = 8;
constexpr std::uint32_t kProposalsPerKernel = 12;
constexpr std::size_t kInFlight = 4;

mk::RandomFaultPlan stalls_and_delays() {
  mk::RandomFaultPlan plan;
  plan.end = 300us;
  plan.stalls = 4;
  plan.delays = 4;
  return plan;
}

/// Every kernel proposes kProposalsPerKernel ledger updates, kInFlight at a time; each
/// outcome lands in `outcomes` (the simulation runs on this thread).
/// The outcomes are shared with the tasks, which may outlive a scenario that failed early.
using Outcomes = std::shared_ptr<std::vector<mk::Result<std::uint64_t>>>;

void propose_everywhere(mk::Simulation& sim, const mk::Replicated<Ledger>& ledger,
                        std::uint64_t seed, const Outcomes& outcomes) {
  for (mk::KernelId id = 0; id < kKernels; ++id) {
    auto spawned = sim.spawn(id, [ledger, seed, outcomes](mk::Kernel& k) -> mk::Task<void> {
      std::mt19937_64 random(seed * 131 + k.id());
      std::vector<mk::Proposal<std::uint64_t>> in_flight;
      for (std::uint32_t n = 1; n <= kProposalsPerKernel; ++n) {
        Ledger::Op op{k.id(), n, static_cast<std::uint32_t>(random() % 16),
                      static_cast<std::int32_t>(random() % 100) + 1};
        in_flight.push_back(ledger.propose(k, op));
        if (in_flight.size() == kInFlight || n == kProposalsPerKernel) {
          // co_await outside the call's arguments: GCC 12 mishandles temporaries there.
          for (auto& proposal : in_flight) {
            auto outcome = co_await proposal;
            outcomes->push_back(std::move(outcome));
          }
          in_flight.clear();
        }
      }
    });
    ASSERT_TRUE(spawned.ok()) << spawned.error().describe();
  }
}

/// The ledger scenario for one protocol: all proposals succeed, replicas end equal, and each
/// update was applied exactly once on every replica.
mk::Result<void> ledger_scenario(mk::Simulation& sim, mk::Protocol protocol) {
  const std::uint64_t seed = sim.options().seed;
  mk::ReplicaOptions options;
  options.protocol = protocol;
  options.route = mk::test::route_for(seed);
  options.record_history = true;
  auto ledger = mk::Replicated<Ledger>::create(sim.system(), Ledger{}, options);
  if (!ledger) return std::move(ledger).error();

  auto outcomes = std::make_shared<std::vector<mk::Result<std::uint64_t>>>();
  propose_everywhere(sim, *ledger, seed, outcomes);
  if (auto idle = sim.run_until_idle(10s); !idle) return idle;
  if (outcomes->size() != kKernels * kProposalsPerKernel) {
    return mk::error(mk::Errc::internal, std::to_string(outcomes->size()) + " of " +
                                             std::to_string(kKernels * kProposalsPerKernel) +
                                             " proposals completed");
  }
  for (const auto& outcome : *outcomes) {
    if (!outcome)
      return mk::error(outcome.error().code, "a proposal failed: " + outcome.error().describe());
  }

  auto first = mk::test::replica_of(sim, *ledger, 0);
  if (!first) return std::move(first).error();
  auto first_history = mk::test::history_of(sim, *ledger, 0);
  if (!first_history) return std::move(first_history).error();
  for (mk::KernelId id = 0; id < kKernels; ++id) {
    auto replica = mk::test::replica_of(sim, *ledger, id);
    if (!replica) return std::move(replica).error();
    if (replica->balances != first->balances || replica->applied != first->applied) {
      return mk::error(mk::Errc::internal,
                       "kernel " + std::to_string(id) + "'s balances differ from kernel 0's");
    }
    auto history = mk::test::history_of(sim, *ledger, id);
    if (!history) return std::move(history).error();
    std::map<std::pair<mk::KernelId, std::uint64_t>, int> seen;
    for (const auto& op : *history)
      ++seen[{op.origin, op.number}];
    if (seen.size() != kKernels * kProposalsPerKernel || history->size() != seen.size()) {
      return mk::error(mk::Errc::internal, "kernel " + std::to_string(id) + " applied " +
                                               std::to_string(history->size()) + " updates, " +
                                               std::to_string(seen.size()) + " distinct");
    }
    if (protocol == mk::Protocol::ordered) {
      // Each proposer's updates keep its order (it had kInFlight of them in flight at once).
      std::map<mk::KernelId, std::uint64_t> last_of;
      for (const auto& op : *history) {
        if (op.number < last_of[op.origin]) {
          return mk::error(mk::Errc::internal, "kernel " + std::to_string(id) + " applied " +
                                                   std::to_string(op.origin) + "." +
                                                   std::to_string(op.number) +
                                                   " after a later update of the same proposer");
        }
        last_of[op.origin] = op.number;
      }
      const bool same_order =
          std::equal(history->begin(), history->end(), first_history->begin(), first_history->end(),
                     [](const mk::OpId& a, const mk::OpId& b) {
                       return a.origin == b.origin && a.number == b.number;
                     });
      if (!same_order || replica->digest != first->digest) {
        return mk::error(mk::Errc::internal,
                         "kernel " + std::to_string(id) + " applied another order than kernel 0");
      }
    }
  }
  return {};
}

TEST(ReplicaSeeds, OrderedBroadcastAppliesOneOrderEverywhere) {
  auto report = mk::run_seeds(
      {.seeds = mk::test::scaled(1000), .test_name = current_test()},
      mk::test::eight_kernels(stalls_and_delays()),
      [](mk::Simulation& sim) { return ledger_scenario(sim, mk::Protocol::ordered); });
  EXPECT_TRUE(report.ok()) << report.describe();
}

TEST(ReplicaSeeds, OnePhaseLeavesEqualReplicas) {
  auto report = mk::run_seeds(
      {.seeds = mk::test::scaled(1000), .test_name = current_test()},
      mk::test::eight_kernels(stalls_and_delays()),
      [](mk::Simulation& sim) { return ledger_scenario(sim, mk::Protocol::one_phase); });
  EXPECT_TRUE(report.ok()) << report.describe();
}

/// Every kernel claims three slots at once; at most one claim of a slot may commit.
mk::Result<void> claims_scenario(mk::Simulation& sim) {
  const std::uint64_t seed = sim.options().seed;
  mk::ReplicaOptions options;
  options.protocol = mk::Protocol::two_phase;
  options.route = mk::test::route_for(seed);
  auto claims = mk::Replicated<Claims>::create(sim.system(), Claims{}, options);
  if (!claims) return std::move(claims).error();

  struct Attempt {
    Claims::Op op;
    mk::Result<std::uint32_t> outcome;
  };
  // Shared with the tasks, which may outlive a scenario that failed early.
  auto attempts = std::make_shared<std::vector<Attempt>>();
  for (mk::KernelId id = 0; id < kKernels; ++id) {
    auto spawned =
        sim.spawn(id, [claims = *claims, seed, attempts](mk::Kernel& k) -> mk::Task<void> {
          std::mt19937_64 random(seed * 977 + k.id());
          std::vector<Claims::Op> ops;
          std::vector<mk::Proposal<std::uint32_t>> in_flight;
          for (int i = 0; i < 3; ++i) {
            ops.push_back({static_cast<std::uint32_t>(random() % 8), k.id() + 1});
            in_flight.push_back(claims.propose(k, ops.back()));
          }
          for (std::size_t i = 0; i < ops.size(); ++i) {
            auto outcome = co_await in_flight[i];
            attempts->push_back(Attempt{ops[i], std::move(outcome)});
          }
        });
    if (!spawned) return spawned;
  }
  if (auto idle = sim.run_until_idle(10s); !idle) return idle;
  if (attempts->size() != kKernels * 3) {
    return mk::error(mk::Errc::internal, "not every claim completed");
  }

  std::array<std::uint32_t, 8> winner{};
  for (const auto& attempt : *attempts) {
    if (attempt.outcome) {
      if (winner[attempt.op.slot] != 0) {
        return mk::error(mk::Errc::internal,
                         "two claims of slot " + std::to_string(attempt.op.slot) + " committed");
      }
      winner[attempt.op.slot] = attempt.op.owner;
    } else if (attempt.outcome.error().code != mk::Errc::conflict &&
               attempt.outcome.error().code != mk::Errc::already_exists) {
      return mk::error(mk::Errc::internal,
                       "a claim failed for another reason: " + attempt.outcome.error().describe());
    }
  }
  for (mk::KernelId id = 0; id < kKernels; ++id) {
    auto replica = mk::test::replica_of(sim, *claims, id);
    if (!replica) return std::move(replica).error();
    if (replica->owners != winner) {
      return mk::error(mk::Errc::internal,
                       "kernel " + std::to_string(id) + " holds an aborted claim or lacks one");
    }
  }
  // No participant kept a reservation: a fresh claim of every free slot commits.
  for (std::uint32_t slot = 0; slot < winner.size(); ++slot) {
    if (winner[slot] != 0) continue;
    auto fresh =
        sim.run(0, [claims = *claims, slot](mk::Kernel& k) -> mk::Task<mk::Result<std::uint32_t>> {
          co_return co_await claims.propose(k, Claims::Op{slot, 100});
        });
    if (!fresh) return std::move(fresh).error();
    if (!*fresh) {
      return mk::error(mk::Errc::internal, "slot " + std::to_string(slot) +
                                               " is still reserved: " + fresh->error().describe());
    }
  }
  return {};
}

/// Two-phase commit with a deadline shorter than the stalls: some proposals time out. Each
/// kernel updates its own account, one update after another, so that a conflict could only be
/// with its own previous transaction, which the protocol rules out. Every replica holds exactly
/// the updates that succeeded: a timed-out proposal was aborted everywhere.
mk::Result<void> timeout_scenario(mk::Simulation& sim, std::size_t* timeouts) {
  const std::uint64_t seed = sim.options().seed;
  mk::ReplicaOptions options;
  options.protocol = mk::Protocol::two_phase;
  options.route = mk::test::route_for(seed);
  options.timeout = 15us;
  options.record_history = true;
  auto ledger = mk::Replicated<Ledger>::create(sim.system(), Ledger{}, options);
  if (!ledger) return std::move(ledger).error();
  struct Tally {
    std::map<std::pair<mk::KernelId, std::uint32_t>, std::int32_t> succeeded;
    std::size_t timed_out = 0;
    std::optional<mk::Error> unexpected;
  };
  auto tally = std::make_shared<Tally>();
  for (mk::KernelId id = 0; id < kKernels; ++id) {
    auto spawned = sim.spawn(id, [ledger = *ledger, seed, tally](mk::Kernel& k) -> mk::Task<void> {
      std::mt19937_64 random(seed * 977 + k.id());
      for (std::uint32_t n = 1; n <= kProposalsPerKernel; ++n) {
        const auto amount = static_cast<std::int32_t>(random() % 100) + 1;
        auto done = co_await ledger.propose(k, Ledger::Op{k.id(), n, k.id(), amount});
        if (done) {
          tally->succeeded[{k.id(), n}] = amount;
        } else if (done.error().code == mk::Errc::timed_out) {
          ++tally->timed_out;
        } else if (!tally->unexpected) {
          tally->unexpected = done.error();  // A conflict included: only its own could be.
        }
      }
    });
    if (!spawned) return spawned;
  }
  if (auto idle = sim.run_until_idle(10s); !idle) return idle;
  if (tally->unexpected) {
    return mk::error(mk::Errc::internal, "unexpected: " + tally->unexpected->describe());
  }
  *timeouts += tally->timed_out;
  std::array<std::int64_t, 16> expected{};
  for (const auto& [id, amount] : tally->succeeded)
    expected[id.first] += amount;
  for (mk::KernelId id = 0; id < kKernels; ++id) {
    auto replica = mk::test::replica_of(sim, *ledger, id);
    if (!replica) return std::move(replica).error();
    auto history = mk::test::history_of(sim, *ledger, id);
    if (!history) return std::move(history).error();
    if (replica->balances != expected || history->size() != tally->succeeded.size()) {
      return mk::error(mk::Errc::internal,
                       "kernel " + std::to_string(id) + " holds other updates than those that " +
                           "succeeded (" + std::to_string(history->size()) + " applied, " +
                           std::to_string(tally->succeeded.size()) + " succeeded)");
    }
  }
  return {};
}

TEST(ReplicaSeeds, TwoPhaseTimeoutsAbortEverywhereAndNeverMeetTheirOwnPrevious) {
  mk::RandomFaultPlan plan = stalls_and_delays();
  plan.max_stall = 40us;  // Longer than the deadline: some prepares cannot complete in time.
  // After the object was made (its creation has the same short deadline).
  plan.begin = 30us;
  plan.end = 330us;
  std::size_t timeouts = 0;
  auto report = mk::run_seeds(
      {.seeds = mk::test::scaled(1000), .test_name = current_test()}, mk::test::eight_kernels(plan),
      [&timeouts](mk::Simulation& sim) { return timeout_scenario(sim, &timeouts); });
  EXPECT_TRUE(report.ok()) << report.describe();
  // The deadline did strike: the invariant was checked against real timeouts.
  if (report.seeds_planned >= 100) {
    EXPECT_GT(timeouts, 0u);
  }
}

TEST(ReplicaSeeds, TwoPhaseCommitNeverCommitsTwoConflictingClaims) {
  auto report = mk::run_seeds({.seeds = mk::test::scaled(1000), .test_name = current_test()},
                              mk::test::eight_kernels(stalls_and_delays()), claims_scenario);
  EXPECT_TRUE(report.ok()) << report.describe();
}

}  // namespace
