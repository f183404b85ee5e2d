// Kernels crashing while agreement is under way, for every protocol, over many seeds with
// stalls and delays: one or two kernels crash (sometimes the sequencer, sometimes two at
// nearly the same instant, sometimes in the middle of a turn, half-way through a wave). The
// survivors install a view without them and every invariant of invariants.h holds: bounded
// completion, one view, equal replicas, one order keeping each proposer's (ordered), nothing
// reported done lost, nothing failed applied, no reservation left (two_phase).
#include <gtest/gtest.h>

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

constexpr std::size_t kKernels = 8;
constexpr std::uint32_t kProposalsPerKernel = 10;
constexpr std::size_t kInFlight = 3;
/// A proposal that has not completed by then fails with timed_out.
constexpr mk::Duration kTimeout = 200us;

mk::Result<void> crash_scenario(mk::Simulation& sim, mk::Protocol protocol,
                                std::size_t* unreported) {
  const std::uint64_t seed = sim.options().seed;
  std::mt19937_64 fate(seed);
  mk::ReplicaOptions options;
  options.protocol = protocol;
  options.route = mk::test::route_for(seed);
  options.timeout = kTimeout;
  options.record_history = true;
  // Named, so that the seed can crash it.
  options.sequencer = static_cast<mk::KernelId>(fate() % kKernels);
  auto ledger = mk::Replicated<Ledger>::create(sim.system(), Ledger{}, options);
  if (!ledger) return std::move(ledger).error();

  // One crash, or two at nearly the same instant; every fourth seed the sequencer (which
  // also coordinates membership) goes first; odd seeds crash in the middle of a turn.
  const std::size_t crashes = seed % 3 == 0 ? 2 : 1;
  std::vector<mk::KernelId> victims;
  victims.push_back(seed % 4 == 0 ? *options.sequencer
                                  : static_cast<mk::KernelId>(fate() % kKernels));
  while (victims.size() < crashes) {
    const auto other = static_cast<mk::KernelId>(fate() % kKernels);
    if (other != victims.front()) victims.push_back(other);
  }
  auto when = sim.now() + std::chrono::nanoseconds(fate() % 120'000);
  for (mk::KernelId victim : victims) {
    const auto crashed =
        seed % 2 == 1 ? sim.crash_mid_turn(victim, when, fate() % 4) : sim.crash(victim, when);
    if (!crashed) return crashed;
    when += std::chrono::nanoseconds(fate() % 5'000);
  }

  auto seen = std::make_shared<mk::test::Seen>();
  for (mk::KernelId id = 0; id < kKernels; ++id) {
    auto spawned = sim.spawn(id, [ledger = *ledger, seed, seen](mk::Kernel& k) {
      return mk::test::propose_all(k, ledger, seed, kProposalsPerKernel, kInFlight, seen);
    });
    if (!spawned) return spawned;
  }
  // Bounded: every survivor's proposals end well within this much virtual time.
  if (auto idle = sim.run_until_idle(5ms); !idle) {
    return mk::error(idle.error().code, "the system did not settle: " + idle.error().describe());
  }
  // A victim whose mid-turn crash never came (it sent too little in any one turn) goes now,
  // so that none crashes during the checks below.
  for (mk::KernelId victim : victims) {
    if (sim.crashed(victim)) continue;
    if (auto crashed = sim.crash(victim, sim.now()); !crashed) return crashed;
    if (auto idle = sim.run_until_idle(5ms); !idle) return idle;
  }
  if (seen->unexpected) {
    return mk::error(mk::Errc::internal,
                     "a proposal failed unexpectedly: " + seen->unexpected->describe());
  }
  std::vector<mk::KernelId> survivors;
  for (mk::KernelId id = 0; id < kKernels; ++id) {
    if (sim.crashed(id)) continue;
    survivors.push_back(id);
    if (seen->ended[id] != kProposalsPerKernel) {
      return mk::error(mk::Errc::internal, "kernel " + std::to_string(id) + " survived but only " +
                                               std::to_string(seen->ended[id]) +
                                               " of its proposals ended");
    }
  }
  if (auto agreed = mk::test::check_survivors(sim, *ledger, survivors, *seen, kProposalsPerKernel,
                                              std::nullopt, unreported);
      !agreed) {
    return agreed;
  }
  if (protocol == mk::Protocol::two_phase) {
    return mk::test::check_released(sim, *ledger, survivors.front());
  }
  return {};
}

void sweep(mk::Protocol protocol) {
  std::size_t unreported = 0;
  auto report = mk::run_seeds(
      {.seeds = mk::test::scaled(1000), .test_name = current_test()}, with_stalls_and_delays(),
      [&](mk::Simulation& sim) { return crash_scenario(sim, protocol, &unreported); });
  EXPECT_TRUE(report.ok()) << report.describe();
  // The window the view change closes is reached: updates whose proposer crashed before it
  // heard the outcome were applied by every survivor (ordered: numbered; two_phase: committed
  // by someone; one_phase: applied by someone).
  if (report.seeds_planned >= 100) {
    EXPECT_GT(unreported, 0u);
  }
}

/// A two-phase coordinator dies in the middle of sending its commit: the participants that got
/// it applied it, the others had only prepared. The view change commits it everywhere if any
/// survivor saw the commit, and aborts it everywhere (releasing its key) if none did.
void coordinator_dies_mid_commit(std::size_t commits_sent) {
  mk::SimulationOptions machine = mk::test::eight_kernels({});
  machine.kernels = 4;
  machine.trace = true;
  auto sim = mk::Simulation::create(machine);
  ASSERT_TRUE(sim.ok()) << sim.error().describe();
  mk::ReplicaOptions options;
  options.protocol = mk::Protocol::two_phase;
  options.route = mk::RouteKind::unicast;  // The coordinator sends to each participant itself.
  options.record_history = true;
  auto made = mk::Replicated<Ledger>::create((*sim)->system(), Ledger{}, options);
  ASSERT_TRUE(made.ok()) << made.error().describe();
  const auto ledger = *made;
  ASSERT_TRUE((*sim)
                  ->spawn(0,
                          [ledger](mk::Kernel& k) -> mk::Task<void> {
                            (void)co_await ledger.propose(k, Ledger::Op{0, 1, 5, 10});
                          })
                  .ok());
  // Run until kernel 0 has sent its prepare to kernels 1 to 3; the turns taking the votes send
  // nothing; the one after the last vote sends the commit to kernels 1 to 3, and the crash
  // cuts it.
  const std::size_t before = (*sim)->trace().size();
  auto prepares_sent = [&] {
    std::size_t sends = 0;
    for (std::size_t i = before; i < (*sim)->trace().size(); ++i) {
      const std::string& line = (*sim)->trace()[i];
      if (line.find(" k0 send to k") != std::string::npos &&
          line.find(" k0 send to k0") == std::string::npos) {
        ++sends;
      }
    }
    return sends >= 3;
  };
  while (!prepares_sent())
    ASSERT_TRUE((*sim)->run_for(10ns).ok());
  ASSERT_TRUE((*sim)->crash_mid_turn(0, (*sim)->now(), commits_sent).ok());
  ASSERT_TRUE((*sim)->run_until_idle(1s).ok());
  ASSERT_TRUE((*sim)->crashed(0));
  // The cut came in the commit's turn: the trace has exactly `commits_sent` sends of kernel 0
  // after its last receipt.
  std::size_t sends_after_votes = 0;
  for (const std::string& line : (*sim)->trace()) {
    if (line.find(" k0 receive") != std::string::npos) sends_after_votes = 0;
    if (line.find(" k0 send") != std::string::npos) ++sends_after_votes;
  }
  EXPECT_EQ(sends_after_votes, commits_sent);
  const std::int64_t expected = commits_sent > 0 ? 10 : 0;
  for (mk::KernelId id = 1; id < 4; ++id) {
    auto replica = mk::test::replica_of(**sim, ledger, id);
    ASSERT_TRUE(replica.ok()) << replica.error().describe();
    EXPECT_EQ(replica->balances[5], expected) << "kernel " << id;
  }
  // Its key is free again everywhere.
  ASSERT_TRUE(mk::test::check_released(**sim, ledger, 2).ok());
}

TEST(ReplicaCrash, ACommitOneParticipantSawCommitsEverywhere) {
  coordinator_dies_mid_commit(1);
}

TEST(ReplicaCrash, ACommitNoParticipantSawAbortsEverywhere) {
  coordinator_dies_mid_commit(0);
}

TEST(ReplicaCrash, OrderedBroadcastSurvivorsAgree) {
  sweep(mk::Protocol::ordered);
}

TEST(ReplicaCrash, TwoPhaseCommitSurvivorsAgree) {
  sweep(mk::Protocol::two_phase);
}

TEST(ReplicaCrash, OnePhaseSurvivorsAgree) {
  sweep(mk::Protocol::one_phase);
}

}  // namespace
